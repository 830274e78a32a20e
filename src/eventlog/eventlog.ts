import { closeSync, fstatSync, ftruncateSync, openSync, promises as fsp, statfsSync, unlinkSync, write, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ByteWriter } from '../json/bytes.js';
import { writeBidRecord, writeNoticeRecord, type EventRecord, type NoticeRecord } from './records.js';
import { makeDir, unwritableDir } from '../util/dir.js';
import { whyWriteFailed } from '../ledger/journal.js';

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
  /** Every failure (to count): while the disk stays full, one each 5 s, or each 250 ms with notices coming. */
  onError: (err: Error) => void;
  /** The first failure after writes worked (or at start), its message worded by errno and naming the file: to log once. */
  onFailing?: (err: Error) => void;
  /** A write worked again after `onFailing`. */
  onWritable?: () => void;
  onDrop: () => void;
  /** A file removed to stay within `keepBytes`. */
  onRemoved?: (file: string, bytes: number) => void;
}

/** Bid records held in memory past this while the disk is slow are dropped (counted), never block. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const RETRY_MS = 5_000;
/**
 * A notice's record waits this long after a failure before it tries a new file: a try per notice
 * cost a folder check, an open, a failed write, a stat, a close and an unlink each (1,000 loss
 * notices over 2 s on a full disk: 1,000 files made and removed). Short of the bidder's own settle
 * retry (1 s on), which so still finds a file once space is back.
 */
const NOTICE_RETRY_MS = 250;
/**
 * Notice records held through that wait, to write in the new file at its end: the ledger settled
 * each before it reached the log, and its exchange's retry is a duplicate that logs nothing, so one
 * dropped here was never logged (a win 100 ms after space came back was lost for good). Past this
 * many they are dropped and counted; a bidder taking 1,000 notices a second holds about 250.
 */
const MAX_WAITING_NOTICES = 512;

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
 * win, billing, loss, click, conversion) reaches the kernel before `append` returns: the ledger has
 * written the settlement by then, and the notice's answer follows, so a process killed after
 * answering has logged what it answered for (an exchange's retry is a duplicate to the ledger, never
 * logged again). It is written alone with `writeSync`, as the ledger journal's: a copy into the page
 * cache, no fsync (a power cut may lose what the page cache held).
 *
 * Bid records are held and written once per event-loop turn by an asynchronous write on libuv's
 * thread pool, one write at a time: a disk that stalls writes fills the buffer (then drops, counted)
 * and holds no bid's answer, where a `writeSync` per turn held the loop (with 300 ms writes,
 * sequential bids took p50 322 ms against 14). A notice's own write still holds the loop while the
 * disk stalls it. So a bid's record may land after its notice's, and a kill -9 may lose the bid
 * records of the last turns while keeping their notices: the readers join by bid id whatever the
 * order, and count a notice whose bid is missing (src/report/tally.ts, src/model/eventlog-data.ts).
 *
 * The file is opened O_APPEND, so each write(2), the thread pool's or the loop's, lands whole after
 * the others; every write is of whole records, and one the disk cuts short is not completed (a
 * second write could land after another's). If the disk is full or the directory unwritable, the
 * records not written are counted as lost and the writer retries in a new file: bid records after
 * 5 s (those meanwhile dropped, counted); notice records 250 ms after, those that come meanwhile
 * held in memory (at most 512) and written in that new file at the wait's end, by a timer, so none
 * waits on a later notice. A held one reaches the kernel only then: a kill -9 within the wait loses
 * it, where before it was dropped at once.
 */
export function createEventLog(opts: EventLogOptions) {
  interface LogFile {
    fd: number;
    path: string;
    /** Closed once the write in flight on it ends. */
    closing: boolean;
    /** Notice writes begun on it: one during a bid write may sit after that write's bytes. */
    noticeWrites: number;
  }
  let file: LogFile | null = null;
  /** The one bid write in flight, on this file or one rotated away. */
  let writing: { file: LogFile; bytes: number; done: Promise<void> } | null = null;
  /** Bytes of the current file: written, in flight, then held. */
  let bytes = 0;
  /** A failure's wait for a new file: bid records until `brokenUntil`, a notice's until `noticeBrokenUntil`. */
  let brokenUntil = 0;
  let noticeBrokenUntil = 0;
  let seq = 0;
  /** A write or open failed, and none has worked since (`onFailing` was called). */
  let failing = false;

  let current = '';
  let pruning: Promise<void> | null = null;
  /**
   * The next file opened prunes: the first, and each after a rotation by size, when the tree grew.
   * After a failure, only when the file it closed holds records: the tree grew, and a bidder whose
   * disk fails more often than it rotates otherwise never pruned (40 short outages of ~90 KB each:
   * 40 files, 3.6 MB against keepBytes 200 KB). The empty files of the tries while the disk stays
   * full are removed and set nothing: one pass per outage, not one per try.
   */
  let pruneDue = true;

  const keepRoot = opts.keepRoot ?? opts.dir;
  /** Notice records that came during a failure's wait, written by `retry` at its end (or by the notice that ends it, or close). */
  const waiting: NoticeRecord[] = [];
  let retry: NodeJS.Timeout | null = null;

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


  /**
   * A new file, or null where it cannot be opened. After a failure a bid's record waits RETRY_MS,
   * so a full disk costs no syscalls per bid; a notice's record (`notice`) only NOTICE_RETRY_MS, so
   * a notice settled once space is back (the bidder's own retry comes 1 to 4 s after it) is logged,
   * where its exchange's later retry is a duplicate that logs nothing. `waited`: the wait's timer
   * ran out, whatever an injected clock says.
   */
  function open(notice: boolean, waited = false): LogFile | null {
    if (!waited && opts.clock() < (notice ? noticeBrokenUntil : brokenUntil)) return null;
    try {
      makeDir(opts.dir);
      const stamp = new Date(opts.clock()).toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
      // A new file, never one there: a process restarted within the same second counts from 0
      // too, and appending to its predecessor's file glued the first record onto a line a kill tore.
      for (;;) {
        const path = join(opts.dir, `events-${stamp}-${seq++}.ndjson`);
        try {
          file = { fd: openSync(path, 'ax'), path, closing: false, noticeWrites: 0 };
          current = path;
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
      }
      if (opts.keepBytes > 0 && pruneDue && pruning === null) {
        pruneDue = false;
        pruning = prune()
          .catch((err: Error) => opts.onError(err))
          .finally(() => (pruning = null));
      }
      // Bid records held behind a write on the file before go to this one.
      bytes = held.pos;
      return file;
    } catch (err) {
      report(err as Error, `cannot open a new event log file in ${opts.dir}`);
      broken();
      return null;
    }
  }

  function broken(): void {
    brokenUntil = opts.clock() + RETRY_MS;
    noticeBrokenUntil = opts.clock() + NOTICE_RETRY_MS;
  }

  function report(err: NodeJS.ErrnoException, what: string): void {
    opts.onError(err);
    if (failing) return;
    failing = true;
    opts.onFailing?.(Object.assign(new Error(`${what}: ${whyWriteFailed(err)}`), { code: err.code }));
  }

  function wrote(): void {
    if (!failing) return;
    failing = false;
    opts.onWritable?.();
  }

  /** A write of `n` bytes of which `w` went: a short write has no errno, so the disk's free space tells a full disk from a size limit. */
  function cutShort(w: number, n: number): Error {
    let why = 'the disk is full or the file reached a size limit';
    try {
      const st = statfsSync(opts.dir);
      why = st.bavail * st.bsize < n - w ? 'no space left on the disk' : "the file reached the process's file size limit (ulimit -f) or a disk quota";
    } catch {
      // Either, as said.
    }
    return new Error(`the event log's write was cut short (${w} of ${n} bytes): ${why}`);
  }


  function closeFd(fd: number): void {
    try {
      closeSync(fd);
    } catch (err) {
      opts.onError(err as Error);
    }
  }

  /** Stops writing to the current file; its descriptor is closed once no write is in flight on it (a number reused by the next open would take that write). */
  function closeFile(): void {
    const f = file;
    if (f === null) return;
    file = null;
    if (writing?.file === f) f.closing = true;
    else closeFd(f.fd);
  }

  /**
   * The disk refused a write to `f`: no more to it, and a new file tried after RETRY_MS (by a
   * notice, after NOTICE_RETRY_MS). A file the disk took nothing of is removed: a full disk often
   * still lets a file be made, and each try left an empty one.
   */
  function failed(f: LogFile, err: NodeJS.ErrnoException): void {
    report(err, `cannot write the event log file ${f.path}`);
    if (file !== f) return;
    let empty = false;
    if (writing?.file !== f) {
      try {
        empty = fstatSync(f.fd).size === 0;
      } catch {
        // Unknown: kept.
      }
    }
    closeFile();
    broken();
    if (!empty) pruneDue = true;
    if (empty) {
      try {
        unlinkSync(f.path);
      } catch {
        // Left: readers skip an empty file.
      }
    }
  }

  /** Holds a notice's record until its wait ends; one timer for the wait, so no later notice is needed to write it. */
  function hold(rec: NoticeRecord): void {
    if (waiting.length >= MAX_WAITING_NOTICES) {
      opts.onDrop();
      return;
    }
    waiting.push(rec);
    if (retry === null) {
      retry = setTimeout(() => writeWaiting(true), Math.max(0, noticeBrokenUntil - opts.clock()));
      retry.unref();
    }
  }

  /**
   * Writes the held notice records to the current file, opening one where there is none (`waited`:
   * whatever the wait's clock says). One try for them all: what a failed open or write leaves is
   * dropped and counted, so a disk that stays full costs a try per wait, not one per notice.
   */
  function writeWaiting(waited: boolean): void {
    if (retry !== null) clearTimeout(retry);
    retry = null;
    const recs = waiting.splice(0);
    if (recs.length === 0) return;
    const f = file ?? open(true, waited);
    for (const rec of recs) {
      if (f !== null && file === f) writeNotice(f, rec);
      else opts.onDrop();
    }
  }

  /**
   * Cuts the head of a record a short write left at the end of `f` (`torn` bytes) off again, where
   * nothing can have been written after it: no torn line, no record both on disk and counted lost.
   */
  function cutTorn(f: LogFile, torn: number): void {
    try {
      ftruncateSync(f.fd, fstatSync(f.fd).size - torn);
    } catch {
      // The disk refuses this too: the reader counts the torn line as unreadable.
    }
  }

  // Bid records are written as UTF-8 into a buffer kept across turns, and copied out for one write
  // per turn: a write per bid record cost more main-thread time than building the record itself.
  const held = new ByteWriter(64 * 1024);
  let heldRecords = 0;
  let scheduled = false;
  const notice = new ByteWriter(4 * 1024);

  function writeHeld(): void {
    if (heldRecords === 0 || writing !== null) return;
    const n = heldRecords;
    heldRecords = 0;
    const f = file;
    if (f === null) {
      held.pos = 0;
      for (let i = 0; i < n; i++) opts.onDrop();
      return;
    }
    const buf = held.copy();
    held.pos = 0;
    const noticeWrites = f.noticeWrites;
    let ended!: () => void;
    writing = { file: f, bytes: buf.length, done: new Promise((r) => (ended = r)) };
    write(f.fd, buf, 0, buf.length, null, (err, w) => {
      writing = null;
      if (err !== null || w < buf.length) {
        const whole = err !== null ? 0 : buf.lastIndexOf(0x0a, w - 1) + 1;
        let kept = 0;
        for (let i = buf.indexOf(0x0a); i >= 0 && i < whole; i = buf.indexOf(0x0a, i + 1)) kept++;
        for (let i = kept; i < n; i++) opts.onDrop();
        const why = err ?? cutShort(w, buf.length);
        if (err === null && w > whole && f.noticeWrites === noticeWrites) cutTorn(f, w - whole);
        failed(f, why);
      } else wrote();
      if (f.closing) closeFd(f.fd);
      writeHeld();
      ended();
    });
  }

  function writeNotice(f: LogFile, rec: NoticeRecord): void {
    notice.pos = 0;
    // With a bid write in flight on this file, a line of its own: should that write be cut short
    // (a full disk) and this one land after its torn piece, the notice is still a whole line, not
    // glued onto the torn record (which the reader counts as one bad line); readers skip empty lines.
    if (writing?.file === f) notice.text('\n');
    // A notice record's keys are written in NoticeRecord's order, which is the order the notice
    // handler builds them in: the line JSON.stringify would give.
    writeNoticeRecord(notice, rec);
    bytes += notice.pos;
    f.noticeWrites++;
    let w = 0;
    try {
      w = writeSync(f.fd, notice.buf, 0, notice.pos);
      if (w < notice.pos) throw cutShort(w, notice.pos);
      wrote();
    } catch (err) {
      opts.onDrop();
      if (w > 0 && writing?.file !== f) cutTorn(f, w);
      failed(f, err as Error);
    }
  }

  function writeTurn(): void {
    scheduled = false;
    writeHeld();
  }

  return {
    append(rec: EventRecord): void {
      if (!opts.enabled) return;
      if (file === null && rec.type !== 'bid' && opts.clock() < noticeBrokenUntil) return hold(rec);
      if (file === null || bytes >= opts.rotateBytes) {
        if (file !== null) pruneDue = true;
        writeHeld();
        closeFile();
        if (open(rec.type !== 'bid') === null) {
          opts.onDrop();
          return;
        }
      }
      if (rec.type !== 'bid') {
        // Those held first, in the order they came. (A bid that opens the file leaves them to their
        // timer: its wait, 5 s, is past theirs.)
        if (waiting.length > 0) writeWaiting(false);
        if (file === null) {
          opts.onDrop();
          return;
        }
        return writeNotice(file, rec);
      }
      if (held.pos + (writing?.bytes ?? 0) > MAX_BUFFERED_BYTES) {
        opts.onDrop();
        return;
      }
      const from = held.pos;
      writeBidRecord(held, rec);
      bytes += held.pos - from;
      heldRecords++;
      if (!scheduled) {
        scheduled = true;
        setImmediate(writeTurn);
      }
    },
    /** Writes what is held (notice records waiting out a failure too), waits for the writes in flight and closes the current file (shutdown). */
    async close(): Promise<void> {
      await pruning;
      writeHeld();
      while (writing !== null) await writing.done;
      writeWaiting(true);
      closeFile();
      // Writing what waited can open a file, which prunes after a failure: the shutdown goes on
      // only once that is done (fix review fixrevh: 202 files as close() resolved, 2 just after).
      await pruning;
    },
  };
}

export type EventLog = ReturnType<typeof createEventLog>;
