import type { Campaign } from '../types.js';
import { loadPolicies, PolicyError } from '../config/policies.js';
import { unwritableDir, unwritableFile } from '../util/dir.js';

/** End a command with one readable line on stderr (no stack): exit 2 for bad input, 1 otherwise. */
export function fail(message: string, code = 1): never {
  process.stderr.write(`bidder: ${message}\n`);
  process.exit(code);
}

/** The campaign catalog of a policy directory, or every problem with it and exit 2. */
export function campaignsFrom(dir: string): Campaign[] {
  try {
    return loadPolicies(dir).campaigns;
  } catch (err) {
    if (err instanceof PolicyError) fail(err.message, 2);
    // A folder that is not there, or not readable: the user's to fix, said in one line.
    if (typeof (err as NodeJS.ErrnoException).code === 'string') fail(`policies ${dir}: ${(err as Error).message}`, 2);
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
  const why = unwritableFile(file);
  if (why !== null) fail(`${flag} ${file}: cannot write there (${why})`, 2);
}
