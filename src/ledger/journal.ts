import * as fs from 'node:fs';
import * as zlib from 'node:zlib';

/**
 * Journal records: one line each, `<crc32 hex> <json>\n`. The checksum covers the JSON bytes, so
 * a torn write (kill -9 mid-line, a full disk) or a flipped bit ends the readable journal at the
 * last good record instead of being replayed as money.
 */

export type JournalRecord =
  /** reserve: bid, campaign, amount (micros), expiry (epoch ms), UTC day charged. */
  | { t: 'r'; b: string; c: string; a: number; e: number; d: number }
  /**
   * settle: price (micros) charged to campaign `c` on day `d`, at epoch ms `at`; `o: 1` = beyond
   * the budget (overspend); `l`: the report's level (0 a markup render, absent a win notice, 2 a
   * billing notice); `x`: the notice's signed expiry (epoch ms), where it is later than the
   * reservation's (or there was none): the bid is remembered until then plus the retention (absent,
   * in records written before: from the reservation's expiry or the settlement). Self-contained.
   */
  | { t: 's'; b: string; c: string; d: number; p: number; at: number; o?: 1; l?: 0 | 2; x?: number }
  /**
   * correction: a more authoritative report (`l`: 1 the win notice, 2 the billing notice; absent,
   * from before levels, a billing notice lowering it) set a settled bid's price to `p` (micros);
   * `o: 1`: the rise found no room, and the whole bid is now overspend.
   */
  | { t: 'c'; b: string; p: number; at: number; l?: 1 | 2; o?: 1 }
  /**
   * billed: a billing notice confirmed the price a win notice set (no money moved; a repeat is a
   * duplicate). Read as nothing by versions before it.
   */
  | { t: 'b'; b: string }
  /** once: key `k` seen, remembered until epoch ms `e` (click and conversion dedup). */
  | { t: 'o'; k: string; e: number }
  /** release on loss. */
  | { t: 'x'; b: string; at: number }
  /** a late settle refused for lack of budget (so a repeat is a duplicate, not a second try). */
  | { t: 'n'; b: string; at: number }
  /**
   * past daily: campaign `c`'s day `d`, a day past when a reload changed the daily budget, keeps
   * the daily budget `m` (micros) it had (src/ledger/state.ts `pastDaily`); also in snapshots.
   * Read as nothing by versions before it; a journal without it judges the day by the rule in force.
   */
  | { t: 'p'; c: string; d: number; m: number }
  /**
   * daily: campaign `c`'s daily budget in force from here on is `m` (micros), written when a rule
   * sets one unlike the last written (at a start or a reload, synced before it goes on: lost, the
   * next start would give the days since it the budget before it); also in snapshots. A start reads
   * the journal before it sets the rules, so a budget edited while the bidder was down gives the
   * days past the one they had (`p` records), as a reload does. Read as nothing by versions before it.
   */
  | { t: 'q'; c: string; m: number }
  /** snapshot only: header naming the last journal generation the snapshot covers. */
  | { t: 'h'; g: number }
  /**
   * snapshot only: settled spend (and overspend `o`) of a campaign on a day; also, on the latest of
   * them, the spend of the days folded into the campaign's totals (src/ledger/state.ts), which
   * loading folds again.
   */
  | { t: 'a'; c: string; d: number; s: number; o?: number }
  /**
   * snapshot only: a finished bid kept for idempotency (state code and flags, see ledger/state.ts);
   * `e`: its expiry where later than `at`, which its retention then runs from (absent before).
   */
  | { t: 'k'; b: string; c: string; d: number; a: number; st: number; at: number; f?: number; e?: number }
  /** snapshot only: trailer with the record count, so a truncated snapshot is detected. */
  | { t: 'z'; n: number };

/**
 * A record whose type this version does not read: one written by a later version (a rollback across
 * a journal format change). Skipped, it would be money forgotten with no word (a later version's
 * settlement, or its correction of a price): `LedgerCore.apply` throws this instead, and every
 * reader of a journal or snapshot (a start, compaction, the carry into Redis) stops there, naming
 * the file (`unreadableRecord`).
 */
export class UnreadableRecordError extends Error {
  /** The file it was read from, once a reader has named it (`inFile`). */
  file?: string;
  constructor(readonly type: string) {
    super(`a ledger record this version does not read (type ${JSON.stringify(type)}, written by a later version)`);
  }

  /** Names the file (a journal generation or the snapshot) it was read from: the message becomes `unreadableRecord`'s line. */
  inFile(file: string, what: 'journal' | 'snapshot'): this {
    this.file = file;
    this.message = unreadableRecord(file, this.type, what);
    return this;
  }
}

/** The one line a start is refused with when `file` (a journal generation or the snapshot) holds a record of type `type` it does not read. */
export function unreadableRecord(file: string, type: string, what: 'journal' | 'snapshot' = 'journal'): string {
  return `ledger ${what} ${file} holds a record this version does not read (type ${JSON.stringify(type)}, written by a later version): start that version again`;
}

const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

export function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  let c = -1;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** CRC-32 of a string's UTF-8 bytes; ASCII (the usual bid id) is read in place without a Buffer. */
function crc32TextJs(s: string): number {
  let c = -1;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch > 127) return crc32(Buffer.from(s, 'utf8'));
    c = CRC_TABLE[(c ^ ch) & 0xff] ^ (c >>> 8);
  }
  return (c ^ -1) >>> 0;
}

/**
 * CRC-32 of a whole string's UTF-8 bytes: zlib's (Node 20.15 on; the same CRC, a string encoded as
 * UTF-8), about a fifth of the JS loop's instructions on a notice's ~90-byte record, else the loop.
 */
const crc32Text: (s: string) => number = typeof zlib.crc32 === 'function' ? (s) => zlib.crc32(s) : crc32TextJs;

// A byte as two lowercase hex digits: the checksum's 8 digits from four lookups (toString(16) and
// padStart were ~1.2k instructions a line).
const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function line(json: string): string {
  const crc = crc32Text(json);
  return `${HEX2[crc >>> 24]}${HEX2[(crc >>> 16) & 0xff]}${HEX2[(crc >>> 8) & 0xff]}${HEX2[crc & 0xff]} ${json}\n`;
}

export function encodeRecord(rec: JournalRecord): string {
  return line(JSON.stringify(rec));
}

/**
 * `encodeRecord` of a reserve record built as the ledger builds it (keys t, b, c, a, e, d in that
 * order), byte for byte; one per bid, so the object is not walked by JSON.stringify.
 */
export function encodeReserve(rec: Extract<JournalRecord, { t: 'r' }>): string {
  const { a, e, d } = rec;
  // JSON writes a number as String does, except a non-finite one (null): left to JSON.stringify.
  if (!(Number.isFinite(a) && Number.isFinite(e) && Number.isFinite(d))) return encodeRecord(rec);
  return line(`{"t":"r","b":${JSON.stringify(rec.b)},"c":${JSON.stringify(rec.c)},"a":${a},"e":${e},"d":${d}}`);
}

/**
 * `encodeRecord` of a notice's record as the ledger's state builds it (src/ledger/state.ts), byte
 * for byte: keys in the order they are set there ('s': t b c d p at, then l, x and o where set; 'c':
 * t b p at l, then o; 'b': t b; 'x': t b at; 'o': t k e). A settlement, billing confirmation,
 * release or click's once is written per notice, and JSON.stringify's walk of the object was ~6k of a win notice's
 * instructions. A non-finite number (JSON's null) or another record goes to encodeRecord.
 */
export function encodeNoticeRecord(rec: JournalRecord): string {
  switch (rec.t) {
    case 's':
      if (!(Number.isFinite(rec.d) && Number.isFinite(rec.p) && Number.isFinite(rec.at) && (rec.x === undefined || Number.isFinite(rec.x)))) break;
      return line(`{"t":"s","b":${JSON.stringify(rec.b)},"c":${JSON.stringify(rec.c)},"d":${rec.d},"p":${rec.p},"at":${rec.at}${rec.l === undefined ? '' : `,"l":${rec.l}`}${rec.x === undefined ? '' : `,"x":${rec.x}`}${rec.o === undefined ? '' : `,"o":${rec.o}`}}`);
    case 'c':
      if (!(Number.isFinite(rec.p) && Number.isFinite(rec.at) && rec.l !== undefined)) break;
      return line(`{"t":"c","b":${JSON.stringify(rec.b)},"p":${rec.p},"at":${rec.at},"l":${rec.l}${rec.o === undefined ? '' : `,"o":${rec.o}`}}`);
    case 'b':
      return line(`{"t":"b","b":${JSON.stringify(rec.b)}}`);
    case 'x':
      if (!Number.isFinite(rec.at)) break;
      return line(`{"t":"x","b":${JSON.stringify(rec.b)},"at":${rec.at}}`);
    case 'o':
      if (!Number.isFinite(rec.e)) break;
      return line(`{"t":"o","k":${JSON.stringify(rec.k)},"e":${rec.e}}`);
  }
  return encodeRecord(rec);
}

export interface DecodeResult {
  records: JournalRecord[];
  /** Byte length of the complete lines read; less than the input length when the tail is torn. */
  goodBytes: number;
  /** A torn final record (`final`), when there is one. */
  error?: string;
  /**
   * Byte offsets of complete lines whose checksum or JSON is bad (disk damage): skipped, and the
   * records after them kept. Only the damaged record is lost, not the rest of the file.
   */
  damaged: number[];
}

/**
 * Decode journal lines. With `final`, bytes after the last newline are a torn record (a crash
 * mid-append); without, they are left for the next chunk.
 */
export function decodeRecords(buf: Buffer, final: boolean): DecodeResult {
  const records: JournalRecord[] = [];
  const damaged: number[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const nl = buf.indexOf(10, pos);
    if (nl < 0) {
      return final ? { records, goodBytes: pos, error: `torn record at byte ${pos}`, damaged } : { records, goodBytes: pos, damaged };
    }
    const rec = decodeLine(buf, pos, nl);
    if (rec === null) damaged.push(pos);
    else records.push(rec);
    pos = nl + 1;
  }
  return { records, goodBytes: pos, damaged };
}

function decodeLine(buf: Buffer, start: number, end: number): JournalRecord | null {
  if (end - start < 10 || buf[start + 8] !== 32) return null;
  const want = Number.parseInt(buf.toString('latin1', start, start + 8), 16);
  if (!Number.isFinite(want) || crc32(buf, start + 9, end) !== want) return null;
  try {
    const rec = JSON.parse(buf.toString('utf8', start + 9, end)) as JournalRecord;
    return typeof rec === 'object' && rec !== null && typeof rec.t === 'string' ? rec : null;
  } catch {
    return null;
  }
}

/**
 * Append-only writer with group commit, at two levels. Appends go to the kernel together in one
 * `writeSync`: `append` groups those of one callback (a scored batch of bids: one syscall instead
 * of one per bid), run as a microtask queued by the first of them; `appendInTurn` groups those of
 * a whole event-loop turn (notices, each its own HTTP callback), run from `setImmediate`, after
 * the turn's I/O callbacks. Either promise resolves once its record is written, so a caller that
 * awaits it before answering never acknowledges a record a killed process could lose. A failed write rejects the append of every record in it and is cut
 * back off the file, so no torn line sits in front of later records (replay would stop there and
 * drop them). `durable()` resolves once an fdatasync that started after the append was written
 * has finished, so concurrent settlements share one disk flush; it runs on libuv's thread pool,
 * never on the event loop. With `syncWindowMs` > 0 the flush starts that long after the first
 * caller that needs it, and every record written meanwhile rides on it (group commit across
 * turns: each fdatasync cost ~60–100 µs of CPU on the development VM, more than the rest of a
 * notice); callers wait up to that much longer, nothing is acknowledged sooner. Once `close()`
 * is called, appends are refused.
 */
export interface JournalWriter {
  readonly bytes: number;
  append(text: string): Promise<void>;
  /** As `append`, written at the end of the loop turn with every other append of the turn. */
  appendInTurn(text: string): Promise<void>;
  durable(): Promise<void>;
  close(): Promise<void>;
}

/** Why a write failed, in words, by its errno (the journal's and the event log's). */
export function whyWriteFailed(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOSPC':
      return 'no space left on the disk (ENOSPC)';
    case 'EFBIG':
      return "the file reached the process's file size limit (ulimit -f, EFBIG)";
    case 'EDQUOT':
      return 'the disk quota is used up (EDQUOT)';
    default:
      return err.message;
  }
}

/**
 * Told of each write and each fdatasync (`op`): a failure (with the file), and each that worked. A
 * write that worked says nothing of a sync that failed: while syncs fail every write between works.
 */
export interface WriteWatch {
  failed(err: NodeJS.ErrnoException, path: string, op: 'write' | 'fdatasync'): void;
  wrote(path: string, op: 'write' | 'fdatasync'): void;
}

export function openJournalWriter(path: string, fsync: boolean, syncWindowMs = 0, watch?: WriteWatch): JournalWriter {
  const fd = fs.openSync(path, 'a');
  /** Bytes in the file, complete records only. */
  let written = fs.fstatSync(fd).size;
  let queued = 0;
  /** Written since the last fdatasync started. */
  let dirty = false;
  let inFlight: Promise<void> | null = null;
  /** The flush of `inFlight` has not started yet (its window is open): it will cover what is written until then. */
  let windowOpen = false;
  let next: Promise<void> | null = null;
  let pending = '';
  let group: Promise<void> | null = null;
  let settleGroup: { resolve: () => void; reject: (err: unknown) => void } | null = null;
  /** How the pending group is scheduled: 0 not yet, 1 setImmediate, 2 a microtask. */
  let scheduled = 0;
  let closing: Promise<void> | null = null;

  const flush = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      dirty = false;
      fs.fdatasync(fd, (err) => {
        if (!err) {
          watch?.wrote(path, 'fdatasync');
          return resolve();
        }
        // What it was to sync is not known durable: the next durable() must sync again.
        dirty = true;
        watch?.failed(err, path, 'fdatasync');
        reject(err);
      });
    });

  function writeGroup(): void {
    const out = Buffer.from(pending, 'utf8');
    pending = '';
    queued = 0;
    group = null;
    let off = 0;
    try {
      while (off < out.length) off += fs.writeSync(fd, out, off);
    } catch (err) {
      // A full disk can take part of the group: cut it off so the file ends on a whole record.
      watch?.failed(err as NodeJS.ErrnoException, path, 'write');
      if (off > 0) fs.ftruncateSync(fd, written);
      throw err;
    }
    written += out.length;
    dirty = true;
    watch?.wrote(path, 'write');
  }

  /** Writes the pending group, if still pending (a microtask may have written it before the turn's end). */
  function runGroup(): void {
    const done = settleGroup;
    if (done === null) return;
    settleGroup = null;
    scheduled = 0;
    try {
      writeGroup();
      done.resolve();
    } catch (err) {
      done.reject(err);
    }
  }

  function enqueue(text: string, inTurn: boolean): Promise<void> {
    if (closing !== null) return Promise.reject(new Error(`journal ${path} is closed`));
    pending += text;
    queued += text.length;
    group ??= new Promise<void>((resolve, reject) => {
      settleGroup = { resolve, reject };
    });
    if (!inTurn && scheduled !== 2) ((scheduled = 2), queueMicrotask(runGroup));
    else if (inTurn && scheduled === 0) ((scheduled = 1), setImmediate(runGroup));
    return group;
  }

  function durable(): Promise<void> {
    if (group !== null) return group.then(durable);
    if (!fsync) return Promise.resolve();
    // Closing syncs everything written before it, then closes the file: nothing to add.
    if (closing !== null) return closing;
    // Nothing written since the running (or the last) sync began: it covers this caller.
    if (!dirty) return inFlight ?? Promise.resolve();
    // A sync whose window is still open starts after this write: it covers this caller too.
    if (windowOpen) return inFlight!;
    if (inFlight === null) {
      const started =
        syncWindowMs > 0
          ? new Promise<void>((resolve) => {
              windowOpen = true;
              setTimeout(() => {
                windowOpen = false;
                resolve();
              }, syncWindowMs);
            }).then(flush)
          : flush();
      inFlight = started.finally(() => {
        inFlight = null;
      });
      return inFlight;
    }
    // A flush already running may have started before our write: queue exactly one follower,
    // which runs whether or not that flush failed.
    const follow = () => {
      next = null;
      return durable();
    };
    next ??= inFlight.then(follow, follow);
    return next;
  }

  return {
    get bytes() {
      return written + queued;
    },
    append(text) {
      return enqueue(text, false);
    },
    appendInTurn(text) {
      return enqueue(text, true);
    },
    durable,
    close() {
      closing ??= (async () => {
        // A failed last write has already rejected its appenders; the file still gets synced and closed.
        await group?.catch(() => {});
        try {
          await (next ?? inFlight ?? Promise.resolve());
          if (fsync && dirty) await flush();
        } finally {
          fs.closeSync(fd);
        }
      })();
      return closing;
    },
  };
}
