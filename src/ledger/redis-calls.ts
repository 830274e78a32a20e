import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
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
 * still open once it has grown past COMPACT_BYTES and twice what it held at the last rewrite.
 * A start loads the open calls of the files of processes that are gone: not its sibling threads'
 * (the same process and start time), nor those of another process still running on the folder (an
 * overlapping restart: the live one counts its own answers, so a duplicate claiming its call here
 * counted the win twice). The files stay until `keepMs` after their last write, as workers of a
 * restarted process each load them and the exchange's retry may reach any of them (Redis answers
 * a call's claim once).
 */
export interface CallLog {
  /** Before `call` (settling `key`) is sent. */
  sent(call: string, key: string): void;
  /** `call` needs no claim any more: answered and handled, claimed, or given up. */
  answered(call: string): void;
  /** The open calls the folder's earlier processes left: [key, call]. */
  readonly earlier: ReadonlyArray<readonly [string, string]>;
  close(): void;
}

const FOLDER = 'redis-calls';
const COMPACT_BYTES = 1 << 20;
// A process and its start: the same in all its worker threads, another after a restart (a pid
// alone comes back as 1 in a container).
const PROCESS = `${process.pid}-${Math.round(performance.timeOrigin * 1000).toString(36)}`;
// This thread's ledgers still open: a file of this process and thread that is not one was closed.
const openHere = new Set<string>();

/**
 * Whether the file `name` is of another process still running: its pid answers, and is not this
 * process's pid (which, with another start, is a container's earlier process). A pid reused by an
 * unrelated process keeps a dead one's file unread until that one ends too.
 */
function ofLiveProcess(name: string): boolean {
  const pid = Number(name.slice(0, name.indexOf('-')));
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: running, as another user.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

export function openCallLog(dir: string, callPrefix: string, keepMs: number, logger: LedgerLogger): CallLog | null {
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
    return null;
  }
  let names: string[] = [];
  try {
    names = readdirSync(folder);
  } catch (err) {
    logger.warn({ err: (err as Error).message, folder }, "Redis ledger: cannot read the settle calls earlier processes left: a win a crash cut off is left out of the event log");
  }
  for (const f of names) {
    if (!f.endsWith('.calls') || f === name || openHere.has(f)) continue;
    if (f.startsWith(`${PROCESS}-`) && !f.startsWith(`${PROCESS}-t${threadId}-`)) continue;
    if (ofLiveProcess(f)) continue;
    const file = join(folder, f);
    // One file at a time: the restarted process's workers read and remove the same stale files.
    let text: string;
    try {
      if (statSync(file).mtimeMs < Date.now() - keepMs) {
        rmSync(file, { force: true });
        continue;
      }
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') logger.warn({ err: (err as Error).message, file }, 'Redis ledger: cannot read a settle calls file an earlier process left');
      continue;
    }
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
    for (const [call, key] of calls) earlier.push([key, call]);
  }
  openHere.add(name);

  /** The calls not yet answered, and their lines. */
  const open = new Map<string, string>();
  let bytes = 0;
  let compactAt = COMPACT_BYTES;
  let answered: string[] = [];
  let scheduled = false;
  let failing = false;
  let closed = false;

  const write = (text: string): void => {
    if (closed) return;
    try {
      writeSync(fd, text);
      bytes += text.length;
      failing = false;
    } catch (err) {
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
        writeSync(t, text);
      } finally {
        closeSync(t);
      }
      renameSync(tmp, path);
      closeSync(fd);
      fd = openSync(path, 'a');
      bytes = text.length;
      compactAt = Math.max(COMPACT_BYTES, 2 * bytes);
    } catch (err) {
      logger.warn({ err: (err as Error).message, path }, 'Redis ledger: cannot rewrite the settle calls file');
      compactAt = 2 * bytes;
    }
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
      if (bytes >= compactAt) compact();
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
      flush();
      openHere.delete(name);
      // Calls still open (failed, their retry to come) stay for the next process.
      if (open.size > 0) compact();
      closed = true;
      try {
        closeSync(fd);
        if (open.size === 0) unlinkSync(path);
      } catch {
        // Left as it is: the next start reads it, or removes it once old.
      }
    },
  };
}
