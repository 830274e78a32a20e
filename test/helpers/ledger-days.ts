import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll } from 'vitest';
import type { LedgerLogger } from '../../src/ledger/index.js';
import type { Budget } from '../../src/types.js';

/**
 * What the in-process ledger's day-boundary tests share: a fresh journal folder per call under one
 * temporary root removed after the file's tests, a day D from noon (T0) to MIDNIGHT, holds of TTL.
 */
export function journalDirs(prefix: string): () => string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
  let dirs = 0;
  return () => path.join(root, `j${dirs++}`);
}

export const DAY = 86_400_000;
export const T0 = Date.UTC(2026, 0, 10, 12);
export const MIDNIGHT = T0 + DAY / 2;
export const TTL = 10_000;
export const quiet: LedgerLogger = { warn: () => {} };
/** Campaign c1 at a daily budget of `usd`. */
export const daily = (usd: number): Record<string, Budget> => ({ c1: { dailyUsd: usd } });
