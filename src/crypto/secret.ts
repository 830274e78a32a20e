import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { makeDir } from '../util/dir.js';

/**
 * A kept secret file that is there and cannot be used: empty, too short, unreadable. The start
 * stops on it: replaced by a new secret, the notices of every bid made under the old one are
 * refused (403: billed, never recorded, and exchanges do not retry a 403) and every user is new.
 */
export class SecretFileError extends Error {}

/**
 * The secret of a bidder started without `noticeSecret`/NOTICE_SECRET, kept in `file` (the
 * journal folder's `notice-secret`, mode 0600): generated at the first start, read back at every
 * later one. It keys the notice signatures and the user keys, so with one generated per start a
 * restart refused the notices of the bids before it and found none of its users again: caps and
 * profiles restored from freqcaps.json were never matched. `serve --workers` gives its workers
 * this one too (src/cli/serve.ts). A fleet still needs one secret set on every process: each
 * generates its own. `created`: this start wrote it. `warning`: a kept file other users can read
 * or write (they could forge notices), to be logged.
 * Throws SecretFileError where the file exists and cannot be used (it is left as it is), and
 * another error where none exists and one cannot be written.
 */
export function storedSecret(file: string): { secret: string; created: boolean; warning?: string } {
  const unusable = (what: string) =>
    new SecretFileError(
      `the notice secret kept in ${file} ${what}: restore it (or give the bidder read access), or delete it to have a new one generated, which refuses the notices of the bids signed with the old one and makes every user new; it is never replaced on its own`,
    );
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw unusable(`cannot be read (${code ?? (err as Error).message})`);
    return created(file);
  }
  try {
    const { mode } = fstatSync(fd);
    let secret: string;
    try {
      secret = readFileSync(fd, 'utf8').trim();
    } catch (err) {
      throw unusable(`cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    // Shorter than a notice secret may be (16 characters): emptied (a disk filled, a crash of a
    // version that did not sync it), or not this file's writing.
    if (secret.length < 16) throw unusable(`is damaged (${secret.length} characters, 16 or more expected)`);
    if ((mode & 0o077) === 0) return { secret, created: false };
    const warning = `the notice secret kept in ${file} can be read or written by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}): whoever reads it can forge win and billing notices; chmod 600 it`;
    return { secret, created: false, warning };
  } finally {
    closeSync(fd);
  }
}

/** A new secret written into `file` (none is there). */
function created(file: string): { secret: string; created: boolean } {
  const secret = randomBytes(24).toString('base64url');
  // Not a recursive mkdirSync: under /proc, Node 20's spins forever (src/util/dir.ts).
  makeDir(dirname(file));
  // Written into a new file, renamed into place: a crash leaves no file, or the whole secret. A
  // .tmp left by a crash between the write and the rename is removed first: writing into it kept
  // its mode (a mode applies only to a file the open creates), and a 0644 one became the secret.
  // `wx` creates the file or fails, so nothing else's mode is ever taken.
  const tmp = `${file}.tmp`;
  rmSync(tmp, { force: true });
  const out = openSync(tmp, 'wx', 0o600);
  try {
    try {
      writeSync(out, `${secret}\n`);
      // Synced before the rename: a power cut could otherwise leave the name on an empty file,
      // which stops the next start (above).
      fsyncSync(out);
    } finally {
      closeSync(out);
    }
    renameSync(tmp, file);
    // The rename is in the folder: synced too, or a power cut soon after a first start could lose
    // the name, and the next start sign with a new secret that refuses every notice of this one's bids.
    syncFolder(dirname(file));
  } catch (err) {
    // The start stops on it: a refused start left a 0-byte notice-secret.tmp behind otherwise.
    rmSync(tmp, { force: true });
    throw err;
  }
  return { secret, created: true };
}

/** The folder synced where its filesystem can: some (FUSE, network, Windows) refuse a folder's fsync or open, and the file is in place already. */
function syncFolder(dir: string): void {
  let folder: number;
  try {
    folder = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(folder);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR' && code !== 'EPERM') throw err;
  } finally {
    closeSync(folder);
  }
}
