import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import type { LedgerLogger } from './logger.js';

/**
 * The Redis ledger's settle calls kept in the bidder's data folder until their answer has been
 * handled, so that a process killed between Redis applying a settle and the notice handler logging
 * it leaves the call behind: the next process on the folder loads it, and the exchange's retry,
 * a duplicate there, claims what it set (LUA_CLAIM) and logs it. Call ids carry a random prefix per
 * process: without this, the retry was a `duplicate` that nothing had counted (the ledger's money
 * right, the event log, report, pacer and caps without the impression).
 *
 * One file per ledger (a process's worker threads each open one) under `redis-calls/`, appended a
 * line per call before it is sent (`writeSync`, no fsync, as the event log's notices: a kill -9
 * keeps what reached the page cache) and a line per answered call, those of a loop turn in one
 * write in the next turn: the notice handler logs a settled win in the turn its answer came in, so
 * a call is marked answered only once its log line is written. The file is rewritten with the calls
 * still open once it has grown past COMPACT_BYTES and twice what it held at the last rewrite, and
 * after a failed write (a file size limit). Each write is told to `written` (the metrics: a failed
 * one is a bidder_ledger_errors_total{op="calls"}), and so is each call unkept for want of the folder.
 * A start loads the open calls of the files of processes that are gone: not its sibling threads'
 * (the same process and start time), nor those of another process still running on the folder (an
 * overlapping restart: the live one counts its own answers, so a duplicate claiming its call here
 * counted the win twice). A running process touches its file every HEARTBEAT_MS; one untouched
 * for LIVE_MS is gone, and one whose pid in this pid namespace is not running is gone at once.
 * The files stay until `keepMs` after their last write, as workers of a
 * restarted process each load them and the exchange's retry may reach any of them (Redis answers
 * a call's claim once).
 */
export interface CallLog {
  /** Before `call` (settling `key`) is sent. */
  sent(call: string, key: string): void;
  /** `call` needs no claim any more: answered and handled, claimed, or given up. */
  answered(call: string): void;
  /** The open calls the folder's earlier processes left, loaded so far: [key, call]. */
  readonly earlier: ReadonlyArray<readonly [string, string]>;
  close(): void;
}

const FOLDER = 'redis-calls';
const COMPACT_BYTES = 1 << 20;
// How often a rewrite after a failed write is tried again while it fails too.
const COMPACT_RETRY_MS = 5_000;
// An open ledger touches its file this often; one of another pid namespace untouched for LIVE_MS
// is of a process that is gone (a pid says nothing across containers on a shared volume, where
// each is pid 1). A minute, not 15 s: the touch is a timer on the serving loop, and a process whose
// loop stalled 17 s (a long GC, a blocked disk) had its open calls claimed by a start meanwhile,
// a win counted by both (fix review fixrev9).
const HEARTBEAT_MS = 5_000;
const LIVE_MS = 12 * HEARTBEAT_MS;
// The pid namespace and boot the pids in file names are of: within the same one a pid that is not
// running, or this process's pid with another start, is of a process that is gone, known at once
// (a kill -9 and restart on one host, whose exchange retries within seconds). Elsewhere (another
// container, or /proc unreadable: a tag matching no other) only the heartbeat tells.
const PID_SPACE = ((): string => {
  try {
    return createHash('sha256')
      .update(readlinkSync('/proc/self/ns/pid'))
      .update(readFileSync('/proc/sys/kernel/random/boot_id'))
      .digest('hex')
      .slice(0, 10);
  } catch {
    return `x${randomBytes(6).toString('hex')}`;
  }
})();
// A process and its start: the same in all its worker threads, another after a restart (a pid
// alone comes back as 1 in a container).
const PROCESS = `${process.pid}-${Math.round(performance.timeOrigin * 1000).toString(36)}-${PID_SPACE}`;
// This thread's ledgers still open: a file of this process and thread that is not one was closed.
const openHere = new Set<string>();

/**
 * Whether the file `name`'s process is gone, running, or not known here (another pid namespace or
 * boot: the heartbeat tells). In this namespace a running pid is taken as the file's process however
 * long its file went untouched (a stalled loop), so a pid the kernel gave to another program keeps
 * that file unread until it is past its keep time.
 */
function liveness(name: string): 'gone' | 'running' | 'unknown' {
  const [pidText, , space] = name.split('-');
  const pid = Number(pidText);
  if (space !== PID_SPACE || !Number.isSafeInteger(pid) || pid <= 0) return 'unknown';
  // Two processes never share a pid at once: this pid with another start (PROCESS's files are
  // skipped before) was this container's process before a restart.
  if (pid === process.pid) return 'gone';
  try {
    process.kill(pid, 0);
    return 'running';
  } catch (err) {
    // EPERM: running, as another user.
    return (err as NodeJS.ErrnoException).code === 'ESRCH' ? 'gone' : 'running';
  }
}

/** Removes `file` if it can: a clean-up after a failure, which must not throw out of a settle. */
function removeQuietly(file: string): void {
  try {
    rmSync(file, { force: true });
  } catch {
    // Left behind: the next rewrite truncates it (the same name).
  }
}

/** Told of each write of a call file: how long it took, and whether it failed (the metrics). */
export type CallsWritten = (seconds: number, failed: boolean) => void;

/** The open calls in a call file's text: [key, call]. */
function openCalls(text: string): Array<[string, string]> {
  const calls = new Map<string, string>();
  for (const line of text.split('\n')) {
    // A line a kill cut short is of a call never sent, or an answer's mark (the call then
    // claimed once more, which Redis answers with nothing).
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      continue;
    }
    if (Array.isArray(v) && typeof v[0] === 'string' && typeof v[1] === 'string') calls.set(v[0], v[1]);
    else if (typeof v === 'string') calls.delete(v);
  }
  return [...calls].map(([call, key]) => [key, call]);
}

/**
 * `found` gets the open calls of the folder's earlier processes ([key, call]): those known gone at
 * once, in this call; those whose file was still touched at the start, once it is not (a process
 * killed moments before, in another pid namespace), from a later heartbeat.
 */
export function openCallLog(
  dir: string,
  callPrefix: string,
  keepMs: number,
  logger: LedgerLogger,
  found: (key: string, call: string) => void = () => {},
  written: CallsWritten = () => {},
): CallLog {
  const folder = join(dir, FOLDER);
  const name = `${PROCESS}-t${threadId}-${callPrefix}.calls`;
  const path = join(folder, name);
  const earlier: Array<[string, string]> = [];
  let fd: number;
  try {
    mkdirSync(folder, { recursive: true });
    fd = openSync(path, 'a');
  } catch (err) {
    logger.warn({ err: (err as Error).message, folder }, "Redis ledger: cannot keep settle calls in the data folder: a win whose answer a crash cuts off is then left out of the event log after the restart");
    // Each call goes unkept: counted as a failed write (bidder_ledger_errors_total{op="calls"}),
    // where one warning at start was all that said it.
    return { earlier, sent: () => written(0, true), answered() {}, close() {} };
  }
  // Files of other processes seen touched: looked at again each heartbeat until loaded or gone.
  const watched = new Set<string>();
  const scan = (names: Iterable<string>): void => {
    for (const f of names) {
      if (!f.endsWith('.calls') || f === name || openHere.has(f)) continue;
      if (f.startsWith(`${PROCESS}-`) && !f.startsWith(`${PROCESS}-t${threadId}-`)) continue;
      const file = join(folder, f);
      // One file at a time: the restarted process's workers read and remove the same stale files.
      let text: string;
      try {
        const age = Date.now() - statSync(file).mtimeMs;
        // A closed file's time is set back by LIVE_MS (close()), so its keep counts from its last write.
        if (age > keepMs + LIVE_MS) {
          rmSync(file, { force: true });
          watched.delete(f);
          continue;
        }
        const alive = f.startsWith(`${PROCESS}-`) ? 'gone' : liveness(f);
        if (alive === 'running' || (alive === 'unknown' && age <= LIVE_MS)) {
          watched.add(f);
          continue;
        }
        text = readFileSync(file, 'utf8');
      } catch (err) {
        watched.delete(f);
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') logger.warn({ err: (err as Error).message, file }, 'Redis ledger: cannot read a settle calls file an earlier process left');
        continue;
      }
      watched.delete(f);
      for (const [key, call] of openCalls(text)) {
        earlier.push([key, call]);
        found(key, call);
      }
    }
  };
  let names: string[] = [];
  try {
    names = readdirSync(folder);
  } catch (err) {
    logger.warn({ err: (err as Error).message, folder }, "Redis ledger: cannot read the settle calls earlier processes left: a win a crash cut off is left out of the event log");
  }
  scan(names);
  openHere.add(name);
  // Said once until a touch works again: every 5 s it filled the log (fix review fixrev9).
  let touchFailing = false;
  const heartbeat = setInterval(() => {
    try {
      const now = new Date();
      utimesSync(path, now, now);
      touchFailing = false;
    } catch (err) {
      if (!touchFailing) logger.warn({ err: (err as Error).message, path }, 'Redis ledger: cannot touch the settle calls file; a start meanwhile takes this process as gone and may count its wins twice');
      touchFailing = true;
    }
    if (watched.size > 0) scan([...watched]);
  }, HEARTBEAT_MS);
  heartbeat.unref();

  /** The calls not yet answered, and their lines. */
  const open = new Map<string, string>();
  let bytes = 0;
  let compactAt = COMPACT_BYTES;
  let answered: string[] = [];
  let scheduled = false;
  let failing = false;
  let closed = false;
  // The file ends in part of a line (a short write): the next write starts on a line of its own,
  // else the next call's line, glued to that part, was unreadable to the next start.
  let torn = false;
  // A write failed: the file is rewritten with the open calls alone at the next call, at most once
  // every COMPACT_RETRY_MS after the last rewrite, whether that worked or not, while no write has
  // worked since it. Under a file size limit (ulimit -f, EFBIG) `bytes` did not grow past the
  // failures, so the file was never rewritten and every write failed for good; on a full disk a
  // rewrite with no call open works (an empty write) and the next write fails again: retried at
  // once, the file was rewritten at every settle (fix review fixrevc: 1,999 rewrites in 2,000 settles).
  let rewriteDue = false;
  let rewroteAt = -Infinity;
  let rewriteFailed = false;

  const write = (text: string): void => {
    if (closed) return;
    const t0 = performance.now();
    const out = torn ? `\n${text}` : text;
    const size = Buffer.byteLength(out);
    try {
      const n = writeSync(fd, out);
      bytes += n;
      if (n < size) {
        torn ||= n > 0;
        throw new Error(`short write: ${n} of ${size} bytes`);
      }
      torn = false;
      failing = false;
      // Room again: a later failure is a fault of its own, rewritten at a call a second on at most.
      // Counted from any rewrite, the wait held back one failing 1 s after a rewrite that worked, its
      // call out of the file for up to 5 s, for good were the settles to stop (fix review fixreve);
      // ended outright, a disk failing every other write, or refusing the rewrite while appends
      // fit, had a rewrite (and a warning) at every settle (fix review fixrevg: 999 in 1,000).
      if (!rewriteFailed) rewroteAt = Math.min(rewroteAt, performance.now() - COMPACT_RETRY_MS + 1_000);
      written((performance.now() - t0) / 1000, false);
    } catch (err) {
      written((performance.now() - t0) / 1000, true);
      rewriteDue = true;
      // A full disk: the calls go on unkept, as without this file; said once until a write works.
      if (!failing) logger.warn({ err: (err as Error).message, path }, 'Redis ledger: cannot write the settle calls file; a crash now may leave wins out of the event log');
      failing = true;
    }
  };
  const compact = (): void => {
    const text = [...open.values()].join('');
    const tmp = `${path}.tmp`;
    try {
      const t = openSync(tmp, 'w');
      try {
        const size = Buffer.byteLength(text);
        const n = writeSync(t, text);
        if (n < size) throw new Error(`short write: ${n} of ${size} bytes`);
      } finally {
        closeSync(t);
      }
      renameSync(tmp, path);
      closeSync(fd);
      fd = openSync(path, 'a');
      bytes = Buffer.byteLength(text);
      compactAt = Math.max(COMPACT_BYTES, 2 * bytes);
      torn = false;
      rewriteDue = false;
      rewriteFailed = false;
    } catch (err) {
      removeQuietly(tmp);
      rewriteFailed = true;
      logger.warn({ err: (err as Error).message, path }, 'Redis ledger: cannot rewrite the settle calls file');
      // Not below COMPACT_BYTES: `bytes` counts what was written since the last rewrite, 0 on a
      // disk full since then, and a limit of 0 had every call try a rewrite (and warn).
      compactAt = Math.max(COMPACT_BYTES, 2 * bytes);
    }
    rewroteAt = performance.now();
  };
  const flush = (): void => {
    scheduled = false;
    const done = answered;
    answered = [];
    let text = '';
    for (const call of done) {
      if (open.delete(call)) text += `${JSON.stringify(call)}\n`;
    }
    if (text !== '') write(text);
  };

  return {
    earlier,
    sent(call, key) {
      if (bytes >= compactAt || (rewriteDue && performance.now() - rewroteAt >= COMPACT_RETRY_MS)) compact();
      const line = `${JSON.stringify([call, key])}\n`;
      open.set(call, line);
      write(line);
    },
    answered(call) {
      answered.push(call);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    close() {
      if (closed) return;
      clearInterval(heartbeat);
      flush();
      openHere.delete(name);
      // Calls still open (failed, their retry to come) stay for the next process.
      if (open.size > 0) compact();
      closed = true;
      try {
        closeSync(fd);
        if (open.size === 0) unlinkSync(path);
        else {
          // Untouched from now: the next start loads it at once, not after LIVE_MS.
          const back = new Date(Date.now() - LIVE_MS - 1);
          utimesSync(path, back, back);
        }
      } catch {
        // Left as it is: the next start reads it, or removes it once old.
      }
    },
  };
}
