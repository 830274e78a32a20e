import { statSync, unwatchFile, watchFile } from 'node:fs';
import { join } from 'node:path';

/**
 * Polls `<modelsDir>/CURRENT` (whether or not it exists: one written after the start, to a bidder
 * started with --model on a folder without one, is loaded when it appears) and calls `changed` on
 * each change it sees; returns the stopper. Its file time is not read: a CURRENT moved into place
 * (mv of a file written earlier, cp -p, rsync -a, tar x) or written on a host whose clock is behind
 * keeps an older time, and is a deploy all the same. `atStart` (currentState's, read when the model
 * was loaded): a change between that read and the watch's start is seen too. The one watch of the
 * single bidder (src/bidder.ts) and of `serve --workers`' main thread (src/cli/workers.ts).
 */
export function watchCurrent(modelsDir: string, changed: () => unknown, atStart?: string): () => void {
  const file = join(modelsDir, 'CURRENT');
  // Absent before and now is no change: Node calls at once where the file does not exist, which
  // loaded a missing CURRENT at every start on --model without one (BidderModelRefused; fix review fixrev8).
  watchFile(file, { interval: 2000 }, (curr, prev) => void (curr.ino === 0 && prev.ino === 0 ? undefined : changed()));
  if (atStart !== undefined && currentState(modelsDir) !== atStart) void changed();
  return () => unwatchFile(file);
}

/** What tells a change of `<modelsDir>/CURRENT` (written in place, or another file moved over it), or absent. */
export function currentState(modelsDir: string): string {
  const st = statSync(join(modelsDir, 'CURRENT'), { throwIfNoEntry: false });
  return st ? `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : 'absent';
}
