import { once } from 'node:events';
import { createReadStream, existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { EventRecord } from '../eventlog/records.js';

/**
 * The event-log files under `paths`: files, or directories of `*.ndjson` searched recursively
 * (worker threads write to `<dir>/w<i>/`), in name order within each directory. A file a folder
 * listed and that is gone by the time it is looked at is left out, as if listed a moment later: a
 * running bidder removes its oldest files at each rotation (`eventLog.keepBytes`).
 */
export function eventFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  // A file named twice (a folder and one inside it, or a link) is read once.
  const seen = new Set<string>();
  const add = (f: string, real: string) => {
    if (!seen.has(real)) (seen.add(real), out.push(f));
  };
  const walk = (p: string) => {
    for (const f of readdirSync(p).sort()) {
      const full = join(p, f);
      const st = statSync(full, { throwIfNoEntry: false });
      if (st === undefined) continue;
      if (st.isDirectory()) walk(full);
      else if (f.endsWith('.ndjson')) {
        const real = realpathGone(full);
        if (real !== undefined) add(full, real);
      }
    }
  };
  for (const p of paths) {
    if (!existsSync(p)) throw new Error(`${p} does not exist`);
    if (statSync(p).isDirectory()) walk(p);
    else add(p, realpathSync(p));
  }
  return out;
}

/** The file's real path, or undefined where it has gone since its folder was listed. */
function realpathGone(f: string): string | undefined {
  try {
    return realpathSync(f);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Stream records from event logs. A line that does not parse (a torn last write after a crash), or
 * parses to no record (not an object with a string `type` and `bidId`: a file that is not an event
 * log, an edit by hand), is counted and skipped, never fatal: the report says how many. The other
 * fields are the reader's to check.
 *
 * A file listed and gone before it is opened was rotated away (a running bidder removes its oldest
 * files beyond `eventLog.keepBytes`, a worker's while another's are being read): it is skipped and
 * given to `onGone`, so the caller can say how many; the rest of the log is still read. Once open,
 * a file removed is read to its end (the open file outlives its name).
 */
export async function* readEvents(files: readonly string[], onBadLine: (file: string, line: number) => void, onGone: (file: string) => void = () => {}): AsyncGenerator<EventRecord> {
  for (const file of files) {
    const input = createReadStream(file, 'utf8');
    try {
      await once(input, 'open');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      onGone(file);
      continue;
    }
    const rl = createInterface({ input, crlfDelay: Infinity });
    let n = 0;
    for await (const line of rl) {
      n++;
      if (line === '') continue;
      let rec: unknown;
      try {
        rec = JSON.parse(line);
      } catch {
        onBadLine(file, n);
        continue;
      }
      if (typeof rec === 'object' && rec !== null && typeof (rec as EventRecord).type === 'string' && typeof (rec as EventRecord).bidId === 'string') yield rec as EventRecord;
      else onBadLine(file, n);
    }
  }
}
