import { closeSync, ftruncateSync, openSync, promises as fsp, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ByteWriter } from '../json/bytes.js';
import { writeBidRecord, writeNoticeRecord, type EventRecord } from './records.js';
import { makeDir, unwritableDir } from '../util/dir.js';

export interface EventLogOptions {
  dir: string;
  rotateBytes: number;
  enabled: boolean;
  /**
   * Most bytes the log files of `keepRoot` and its worker folders may hold together: at each
   * rotation the oldest files beyond it are removed (0: keep everything). A bidder logs every bid,
   * so without a bound the disk fills.
   */
  keepBytes: number;
  /**
   * The folder `keepBytes` bounds, with its worker folders (`w<i>/`, `serve --workers`): `dir`
   * itself, or the folder above it where `dir` is a worker's (default `dir`).
   */
  keepRoot?: string;
  clock: () => number;
  onError: (err: Error) => void;
  onDrop: () => void;
  /** A file removed to stay within `keepBytes`. */
  onRemoved?: (file: string, bytes: number) => void;
}

/** A turn's records past this are dropped (counted): one turn's bids never block on a bigger write. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const RETRY_MS = 5_000;

/**
 * Throws, naming the folder and why, when the event log could not write there. Checked at start:
 * a folder that was never writable is a setting to fix, not a disk that filled (which the log
 * rides out by dropping and counting records).
 */
export function checkEventLogDir(dir: string): void {
  const why = unwritableDir(dir);
  if (why !== null) throw new Error(`the event log folder ${dir} cannot be written (${why}): set eventLog.dir to a writable folder, or eventLog.enabled: false to run without an event log`);
}

/**
 * Append-only NDJSON event log, rotated by size (`events-<time>-<n>.ndjson`). A notice's record (a
 * win, billing, loss, click, conversion) reaches the kernel before `append` returns, with every
 * record held before it: the ledger has written the settlement by then, and the notice's answer
 * follows, so a process killed after answering has logged what it answered for (an exchange's retry
 * is a duplicate to the ledger, never logged again). Bid records are held and written once per
 * event-loop turn. Writes are `writeSync`, as the ledger journal's: a copy into the page cache, no
 * fsync (a power cut may lose what the page cache held). If the disk is full or the directory
 * unwritable, records are counted as lost and the writer retries later.
 */
export function createEventLog(opts: EventLogOptions) {
  let fd: number | null = null;
  /** Bytes of the current file: written, then held. */
  let bytes = 0;
  /** Bytes of the current file that reached the kernel, complete lines only. */
  let written = 0;
  let brokenUntil = 0;
  let seq = 0;

  let current = '';
  let pruning: Promise<void> | null = null;

  const keepRoot = opts.keepRoot ?? opts.dir;

  /**
   * Removes the oldest files (by modification time) of `keepRoot` and its worker folders until the
   * rest fit in `keepBytes`. The whole tree, not this log's folder: a bound per folder kept N ×
   * keepBytes under `--workers N`, and never pruned the folders of workers a run with more of them
   * left. Never the file being written, nor the newest of any folder: it may be another worker's
   * (the workers prune the same tree, each at its own rotations; a file one of them removed first
   * is gone for the other too). Sizing the tree is a directory listing and a stat per file, ~256 at
   * the defaults, once per rotation of each worker.
   */
  async function prune(): Promise<void> {
    const folders = [keepRoot, ...(await fsp.readdir(keepRoot, { withFileTypes: true })).filter((e) => e.isDirectory() && /^w\d+$/.test(e.name)).map((e) => join(keepRoot, e.name))];
    const known: Array<{ path: string; bytes: number; mtimeMs: number }> = [];
    const kept = new Set([current]);
    for (const folder of folders) {
      // A folder removed meanwhile has nothing to prune.
      const names = await fsp.readdir(folder).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return [];
        throw err;
      });
      const files = await Promise.all(
        names.filter((f) => /^events-.*\.ndjson$/.test(f)).map(async (f) => {
          const path = join(folder, f);
          const st = await fsp.stat(path).catch(() => null);
          return st === null ? null : { path, bytes: st.size, mtimeMs: st.mtimeMs };
        }),
      );
      const here = files.filter((f) => f !== null);
      if (here.length > 0) kept.add(here.reduce((a, b) => (b.mtimeMs > a.mtimeMs ? b : a)).path);
      known.push(...here);
    }
    known.sort((a, b) => a.mtimeMs - b.mtimeMs);
    let total = known.reduce((t, f) => t + f.bytes, 0);
    for (const f of known) {
      if (total <= opts.keepBytes) break;
      if (kept.has(f.path)) continue;
      const gone = await fsp.unlink(f.path).then(
        () => false,
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return true;
          throw err;
        },
      );
      total -= f.bytes;
      if (!gone) opts.onRemoved?.(f.path, f.bytes);
    }
  }

  function open(): number | null {
    if (opts.clock() < brokenUntil) return null;
    try {
      makeDir(opts.dir);
      const stamp = new Date(opts.clock()).toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
      // A new file, never one there: a process restarted within the same second counts from 0
      // too, and appending to its predecessor's file glued the first record onto a line a kill tore.
      for (;;) {
        const path = join(opts.dir, `events-${stamp}-${seq++}.ndjson`);
        try {
          fd = openSync(path, 'wx');
          current = path;
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
      }
      if (opts.keepBytes > 0 && pruning === null) {
        pruning = prune()
          .catch((err: Error) => opts.onError(err))
          .finally(() => (pruning = null));
      }
      bytes = 0;
      written = 0;
      return fd;
    } catch (err) {
      opts.onError(err as Error);
      brokenUntil = opts.clock() + RETRY_MS;
      return null;
    }
  }

  function closeFile(): void {
    if (fd === null) return;
    const f = fd;
    fd = null;
    try {
      closeSync(f);
    } catch (err) {
      opts.onError(err as Error);
    }
  }

  // Records are written as UTF-8 into a buffer kept across turns, and go to the kernel in one
  // write: a turn's bids together, a notice's with the bids held before it. A write per bid record
  // cost more main-thread time than building the record itself.
  const pending = new ByteWriter(64 * 1024);
  let pendingRecords = 0;
  let scheduled = false;

  function flush(): void {
    if (pendingRecords === 0) return;
    const n = pendingRecords;
    const len = pending.pos;
    pendingRecords = 0;
    pending.pos = 0;
    if (fd === null) {
      for (let i = 0; i < n; i++) opts.onDrop();
      return;
    }
    try {
      for (let off = 0; off < len; ) off += writeSync(fd, pending.buf, off, len - off);
      written += len;
    } catch (err) {
      // Every record of the write is counted lost, and the part of it that reached the file (a
      // short write before ENOSPC) is cut off again: no torn line, no record both on disk and
      // counted dropped.
      opts.onError(err as Error);
      for (let i = 0; i < n; i++) opts.onDrop();
      try {
        ftruncateSync(fd, written);
      } catch {
        // The disk refuses this too: the reader counts the torn line as unreadable.
      }
      closeFile();
      brokenUntil = opts.clock() + RETRY_MS;
    }
  }

  function flushTurn(): void {
    scheduled = false;
    flush();
  }

  return {
    append(rec: EventRecord): void {
      if (!opts.enabled) return;
      if (fd === null || bytes >= opts.rotateBytes) {
        flush();
        closeFile();
        if (open() === null) {
          opts.onDrop();
          return;
        }
      }
      if (pending.pos > MAX_BUFFERED_BYTES) {
        opts.onDrop();
        return;
      }
      const from = pending.pos;
      if (rec.type === 'bid') writeBidRecord(pending, rec);
      // A notice record's keys are written in NoticeRecord's order, which is the order the notice
      // handler builds them in: the line JSON.stringify would give.
      else writeNoticeRecord(pending, rec);
      bytes += pending.pos - from;
      pendingRecords++;
      if (rec.type !== 'bid') flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flushTurn);
      }
    },
    /** Write what is held and close the current file (shutdown). */
    async close(): Promise<void> {
      await pruning;
      flush();
      closeFile();
    },
  };
}

export type EventLog = ReturnType<typeof createEventLog>;
