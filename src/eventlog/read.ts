import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { EventRecord } from '../eventlog/records.js';

/**
 * An event log's name in a folder: the bidder's `*.ndjson`, or as a rotation tool renames and
 * compresses it (logrotate: `events.ndjson.1`, `events.ndjson-20261205`, `.gz` after either).
 */
const EVENT_LOG_NAME = /\.ndjson(?:[.-][\d-]+)?(?:\.gz)?$/;

/** How many of the files left out `warnSkipped` names before it counts the rest. */
const NAMED_SKIPPED = 10;

/** The default for `eventFiles`' `onSkipped`: one line on stderr, so no file is left out unsaid. */
function warnSkipped(files: readonly string[]): void {
  const named = files.slice(0, NAMED_SKIPPED).join(', ') + (files.length > NAMED_SKIPPED ? `, and ${files.length - NAMED_SKIPPED} more` : '');
  process.stderr.write(`events: ${files.length} files not read, their names not those of event logs (*.ndjson, rotated *.ndjson.1, *.ndjson.gz): ${named}\n`);
}

/**
 * The event-log files under `paths`: files, or directories searched recursively (worker threads
 * write to `<dir>/w<i>/`) for files named as event logs (`EVENT_LOG_NAME`), in name order within
 * each directory. The other files of a directory are given to `onSkipped` (once, if any), so that
 * a log renamed out of the pattern is not left out unsaid; a file named in `paths` is read
 * whatever its name. A file a folder listed and that is gone by the time it is looked at is left
 * out, as if listed a moment later: a running bidder removes its oldest files at each rotation
 * (`eventLog.keepBytes`).
 */
export function eventFiles(paths: readonly string[], onSkipped: (files: readonly string[]) => void = warnSkipped): string[] {
  const out: string[] = [];
  const skipped: string[] = [];
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
      else if (!EVENT_LOG_NAME.test(f)) skipped.push(full);
      else {
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
  if (skipped.length) onSkipped(skipped);
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
 * A gzipped file (by its first bytes, whatever its name: logrotate's `compress`) is read through
 * gunzip. One that ends early or is corrupt is fatal, the error naming it: unlike a torn last line,
 * what is lost is unknown, and a file still being compressed would be read in part. A file
 * compressed otherwise is refused, named, rather than read as lines that are all bad.
 *
 * A file listed and gone before it is opened was rotated away (a running bidder removes its oldest
 * files beyond `eventLog.keepBytes`, a worker's while another's are being read): it is skipped and
 * given to `onGone`, so the caller can say how many; the rest of the log is still read. Once open,
 * a file removed is read to its end (the open file outlives its name).
 */
export async function* readEvents(files: readonly string[], onBadLine: (file: string, line: number) => void, onGone: (file: string) => void = () => {}): AsyncGenerator<EventRecord> {
  for (const file of files) {
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      onGone(file);
      continue;
    }
    let gzip: boolean;
    try {
      gzip = await compressed(fh, file);
    } catch (err) {
      await fh.close();
      throw err;
    }
    const raw = fh.createReadStream({ start: 0 });
    const input = gzip ? pipeline(raw, createGunzip(), () => {}) : raw;
    let n = 0;
    try {
      for await (const line of createInterface({ input, crlfDelay: Infinity })) {
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
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'Z_BUF_ERROR') throw new Error(`${file}: gzip data ends early, after ${n} lines (truncated: copied in part, or still being compressed)`);
      if (code?.startsWith('Z_')) throw new Error(`${file}: corrupt gzip data after ${n} lines (${(err as Error).message})`);
      throw err;
    } finally {
      // A caller that stops early leaves the file open otherwise.
      input.destroy();
      raw.destroy();
    }
  }
}

/** Other compressions' first bytes: such a file is refused, not read as lines of garbage. */
const OTHER_MAGIC: readonly [string, readonly number[]][] = [
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['bzip2', [0x42, 0x5a, 0x68]],
];

/** Whether the file is gzip (1f 8b); throws, naming it, where it is compressed some other way. */
async function compressed(fh: FileHandle, file: string): Promise<boolean> {
  const { buffer, bytesRead } = await fh.read(Buffer.alloc(6), 0, 6, 0);
  const head = buffer.subarray(0, bytesRead);
  const starts = (magic: readonly number[]) => head.length >= magic.length && magic.every((b, i) => head[i] === b);
  if (starts([0x1f, 0x8b])) return true;
  for (const [name, magic] of OTHER_MAGIC) if (starts(magic)) throw new Error(`${file}: compressed with ${name}, which is not read: decompress it, or gzip it`);
  return false;
}
