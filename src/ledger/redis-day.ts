import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { utcDay } from './budget.js';
import type { LedgerLogger } from './logger.js';

/**
 * The latest budget day a Redis bidder used, kept in its own data folder as the in-process journal
 * keeps its own: restarted with its clock behind (across midnight), it reads the day back and does
 * not grant that day's budget again. Per bidder, not in Redis: a bidder whose clock runs ahead
 * moves its own day alone, not the fleet's. Written once a day, by each worker thread whose day
 * turns (they share the folder and, on one host, the clock).
 *
 * Kept with the fleet it was of (`fleet`: the key prefix and Redis server and db): a folder moved
 * to another fleet starts from its clock. A day past the clock's next day is of a clock that ran
 * ahead (set 10 years ahead once, it refused campaigns' flights for good): the clock's day is used.
 */
const FILE = 'redis-day';

type Kept = { day: number } | { unreadable: string } | { fleet: string } | null;

function read(dir: string, fleet: string): Kept {
  let text: string;
  try {
    text = readFileSync(join(dir, FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return { unreadable: (err as Error).message };
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { unreadable: 'not JSON' };
  }
  const { day, fleet: of } = (v ?? {}) as { day?: unknown; fleet?: unknown };
  if (typeof of !== 'string' || !Number.isSafeInteger(day)) return { unreadable: 'no day and fleet' };
  return of === fleet ? { day: day as number } : { fleet: of };
}

/**
 * The day kept in `dir` for `fleet`, or -Infinity where none is (a first start, a folder without
 * it or of another fleet, one unreadable, or a day past `now`'s next).
 */
export function readLatestDay(dir: string, fleet: string, now: number, logger: LedgerLogger): number {
  const kept = read(dir, fleet);
  if (kept === null) return -Infinity;
  // Said: a fleet named otherwise may be this one spelt another way (localhost for 127.0.0.1).
  if ('fleet' in kept) {
    logger.warn({ keptFor: kept.fleet, fleet, dir }, 'Redis ledger: the latest budget day kept in the data folder is of another fleet (key prefix or Redis): not used');
    return -Infinity;
  }
  if ('unreadable' in kept) {
    logger.warn({ err: kept.unreadable, dir }, 'Redis ledger: cannot read the latest budget day; a restart with the clock behind may spend a day again');
    return -Infinity;
  }
  if (kept.day > utcDay(now) + 1) {
    logger.warn({ keptDay: new Date(kept.day * 86_400_000).toISOString().slice(0, 10), clockDay: new Date(now).toISOString().slice(0, 10), dir }, "Redis ledger: the latest budget day kept is past the next day of the clock it is read against (Redis's where the ledger runs on it): a clock that ran ahead; the clock's day is used");
    return -Infinity;
  }
  return kept.day;
}

/**
 * Keeps `day` for `fleet` in `dir`, unless a later one of that fleet is there (another worker's):
 * null where it is kept, else why not (the caller says it and tries again: a full disk at the day's
 * turn, never tried again that day, let a restart 2.5 h behind spend the day before twice).
 */
export function keepLatestDay(dir: string, fleet: string, day: number): string | null {
  const kept = read(dir, fleet);
  // A kept day past `day`'s next is of a clock that ran ahead: `day` replaces it.
  if (kept !== null && 'day' in kept && kept.day >= day && kept.day <= day + 1) return null;
  // Renamed into place: a kill mid-write leaves the day before, never a cut number.
  const tmp = join(dir, `${FILE}.${process.pid}-t${threadId}.tmp`);
  try {
    writeFileSync(tmp, `${JSON.stringify({ day, fleet })}\n`);
    renameSync(tmp, join(dir, FILE));
    return null;
  } catch (err) {
    // A part written before the disk filled is of no use, and takes room. A removal that fails
    // too must not throw: the caller says `err` and tries again.
    try {
      rmSync(tmp, { force: true });
    } catch {
      // Left behind: the next try overwrites it (the same name).
    }
    return (err as Error).message;
  }
}
