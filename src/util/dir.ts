import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, statSync, unlinkSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Creates `dir` and its missing parents one folder at a time. Not `mkdirSync(dir, { recursive:
 * true })`: under a pseudo-filesystem such as /proc, where mkdir answers ENOENT even though the
 * parent exists, Node 20's recursive mkdir retries forever on the main thread, so `serve` hung at
 * start and, its loop blocked, ignored SIGTERM. Here that ENOENT is thrown.
 */
export function makeDir(dir: string): void {
  const missing: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    let isDir: boolean;
    try {
      isDir = statSync(d).isDirectory();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      missing.push(d);
      continue;
    }
    // Only `dir` itself can be something else (under a file, stat answers ENOTDIR); EEXIST, as
    // recursive mkdir answers.
    if (!isDir) throw Object.assign(new Error(`${d} exists and is not a folder`), { code: 'EEXIST' });
    break;
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    try {
      mkdirSync(missing[i]);
    } catch (err) {
      // Made meanwhile by another thread or process (`--workers` threads each make their own
      // `w<N>` in one folder): as good as made here.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(missing[i]).isDirectory()) throw err;
    }
  }
}

/**
 * Makes `dir` where missing and checks that this process may write there: null, or why not (the
 * error's code: ENOENT, EACCES, EEXIST for a file in the way). For the folders a bidder writes,
 * checked at start: one that was never writable is a setting to fix.
 */
export function unwritableDir(dir: string): string | null {
  try {
    makeDir(dir);
    accessSync(dir, constants.W_OK);
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
}

/**
 * As unwritableDir, for a file a command is to write: its folder made where missing, and the file
 * opened for appending (nothing written), removed again where it was not there. An open, not an
 * access check: root passes access() under /proc or on a read-only mount, where the write fails.
 */
export function unwritableFile(file: string): string | null {
  const why = unwritableDir(dirname(resolve(file)));
  if (why !== null) return why;
  const existed = existsSync(file);
  try {
    // A named pipe or a device (/dev/stdout) is not opened here: opened and closed, a pipe's reader
    // took the close for the end of the output, and the command then blocked with no reader left.
    // A folder still goes to the open, which refuses it.
    const st = existed ? statSync(file) : null;
    if (st !== null && (st.isFIFO() || st.isCharacterDevice())) {
      accessSync(file, constants.W_OK);
      return null;
    }
    closeSync(openSync(file, 'a'));
    if (!existed) unlinkSync(file);
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
}
