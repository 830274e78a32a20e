import { createReadStream, existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { EventRecord } from '../eventlog/records.js';

/**
 * The event-log files under `paths`: files, or directories of `*.ndjson` searched recursively
 * (worker threads write to `<dir>/w<i>/`), in name order within each directory.
 */
export function eventFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  // A file named twice (a folder and one inside it, or a link) is read once.
  const seen = new Set<string>();
  const add = (f: string) => {
    const real = realpathSync(f);
    if (!seen.has(real)) (seen.add(real), out.push(f));
  };
  const walk = (p: string) => {
    for (const f of readdirSync(p).sort()) {
      const full = join(p, f);
      if (statSync(full).isDirectory()) walk(full);
      else if (f.endsWith('.ndjson')) add(full);
    }
  };
  for (const p of paths) {
    if (!existsSync(p)) throw new Error(`${p} does not exist`);
    if (statSync(p).isDirectory()) walk(p);
    else add(p);
  }
  return out;
}

/**
 * Stream records from event logs. A line that does not parse (a torn last write after a crash), or
 * parses to no record (not an object with a string `type` and `bidId`: a file that is not an event
 * log, an edit by hand), is counted and skipped, never fatal: the report says how many. The other
 * fields are the reader's to check.
 */
export async function* readEvents(files: readonly string[], onBadLine: (file: string, line: number) => void): AsyncGenerator<EventRecord> {
  for (const file of files) {
    const rl = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
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
