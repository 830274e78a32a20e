import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import type { LedgerLogger } from './logger.js';

/**
 * The latest budget day a Redis bidder used, kept in its own data folder as the in-process journal
 * keeps its own: restarted with its clock behind (across midnight), it reads the day back and does
 * not grant that day's budget again. Per bidder, not in Redis: a bidder whose clock runs ahead
 * moves its own day alone, not the fleet's. Written once a day, by each worker thread whose day
 * turns (they share the folder and, on one host, the clock).
 */
const FILE = 'redis-day';

/** The day kept in `dir`, or -Infinity where none is (a first start, or a folder without it). */
export function readLatestDay(dir: string, logger: LedgerLogger): number {
  let text: string;
  try {
    text = readFileSync(join(dir, FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') logger.warn({ err: (err as Error).message, dir }, 'Redis ledger: cannot read the latest budget day; a restart with the clock behind may spend a day again');
    return -Infinity;
  }
  const day = Number(text.trim());
  return Number.isSafeInteger(day) ? day : -Infinity;
}

/** Keeps `day` in `dir`, unless a later one is there already (another worker's). */
export function keepLatestDay(dir: string, day: number, logger: LedgerLogger): void {
  if (readLatestDay(dir, logger) >= day) return;
  // Renamed into place: a kill mid-write leaves the day before, never a cut number.
  const tmp = join(dir, `${FILE}.${process.pid}-t${threadId}.tmp`);
  try {
    writeFileSync(tmp, `${day}\n`);
    renameSync(tmp, join(dir, FILE));
  } catch (err) {
    logger.warn({ err: (err as Error).message, dir }, 'Redis ledger: cannot keep the latest budget day; a restart with the clock behind may spend a day again');
  }
}
