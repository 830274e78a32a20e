import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { makeDir } from '../util/dir.js';

/**
 * The secret of a bidder started without `noticeSecret`/NOTICE_SECRET, kept in `file` (the
 * journal folder's `notice-secret`, mode 0600): generated at the first start, read back at every
 * later one. It keys the notice signatures and the user keys, so with one generated per start a
 * restart refused the notices of the bids before it and found none of its users again: caps and
 * profiles restored from freqcaps.json were never matched. `serve --workers` gives its workers
 * this one too (src/cli/serve.ts). A fleet still needs one secret set on every process: each
 * generates its own. `created`: this start wrote it.
 * Throws where the file exists but cannot be read, or cannot be written.
 */
export function storedSecret(file: string): { secret: string; created: boolean } {
  try {
    const secret = readFileSync(file, 'utf8').trim();
    // Shorter than a notice secret may be (16 characters): emptied, or not this file's writing.
    if (secret.length >= 16) return { secret, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secret = randomBytes(24).toString('base64url');
  // Not a recursive mkdirSync: under /proc, Node 20's spins forever (src/util/dir.ts).
  makeDir(dirname(file));
  // Renamed into place: a crash leaves no file, or the whole secret.
  writeFileSync(`${file}.tmp`, `${secret}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
  return { secret, created: true };
}
