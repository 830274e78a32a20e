import type { Campaign } from '../types.js';
import { loadPolicies, PolicyError } from '../config/policies.js';
import { unwritableDir, unwritableFile } from '../util/dir.js';

/** End a command with one readable line on stderr (no stack): exit 2 for bad input, 1 otherwise. */
export function fail(message: string, code = 1): never {
  process.stderr.write(`bidder: ${message}\n`);
  process.exit(code);
}

/**
 * A command's problems with its input, found before any work: every one said at once (a
 * `bidder:` line each, a problem's own lines under it) and exit 2, so that a user fixing one does
 * not meet the next at the following run.
 */
export function failIfAny(problems: readonly string[]): void {
  if (problems.length === 0) return;
  process.stderr.write(problems.map((p) => `bidder: ${p}\n`).join(''));
  process.exit(2);
}

/** The campaign catalog of a policy directory, or every problem with it and exit 2. */
export function campaignsFrom(dir: string): Campaign[] {
  const c = campaignsOrProblem(dir);
  if (typeof c === 'string') fail(c, 2);
  return c;
}

/** As campaignsFrom, the problem (every one with the folder, in one message) returned. */
export function campaignsOrProblem(dir: string): Campaign[] | string {
  try {
    return loadPolicies(dir).campaigns;
  } catch (err) {
    if (err instanceof PolicyError) return err.message;
    // A folder that is not there, or not readable: the user's to fix, said in one line.
    if (typeof (err as NodeJS.ErrnoException).code === 'string') return `policies ${dir}: ${(err as Error).message}`;
    throw err;
  }
}

/**
 * An output folder (`--plot DIR`, `--out DIR`) made where missing and writable, checked before any
 * work, or one line and exit 2: not a stack trace after the whole run, nor Node's recursive mkdir
 * looping forever under /proc (makeDir, src/util/dir.ts).
 */
export function outputDir(flag: string, dir: string): void {
  const why = unwritableDir(dir);
  if (why !== null) fail(`${flag} ${dir}: cannot write there (${why})`, 2);
}

/** As outputDir, for an output file (`--plot FILE`, `--ipinyou FILE`, `--out FILE`). */
export function outputFile(flag: string, file: string): void {
  const why = outputFileProblem(flag, file);
  if (why !== null) fail(why, 2);
}

/** As outputFile, the problem returned (null: none). */
export function outputFileProblem(flag: string, file: string): string | null {
  const why = unwritableFile(file);
  return why === null ? null : `${flag} ${file}: cannot write there (${why})`;
}
