import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createRedisLedger } from '../src/ledger/index.js';
import { connectRedis, describeWithRedis, dropKeysAndQuit } from './helpers/redis.js';

/**
 * Calls earlier processes left open in the data folder, several for one bid: after two restarts in
 * a row (the first killed with a settle Redis applied, the second killed while its retry timed out)
 * the third start holds both processes' calls for the bid, and the one Redis applied is the first's.
 */
const URL = 'redis://127.0.0.1:6379/13';
const client = await connectRedis(URL);
const quiet = { warn: () => {}, info: () => {}, error: () => {} };

describeWithRedis('Redis ledger: claiming a bid after several restarts', URL, client, (redis) => {
  const P = `calls-claim-${process.pid}:`;
  const dirs: string[] = [];
  const folder = () => {
    const d = mkdtempSync(join(tmpdir(), 'redis-claim-'));
    dirs.push(d);
    return d;
  };
  afterAll(async () => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await dropKeysAndQuit(redis, P);
  });

  it("claims the call Redis applied, whichever earlier process's file holds it", async () => {
    const now = Date.UTC(2026, 11, 7, 12);
    const open = (dataDir: string) => createRedisLedger({ url: URL, clock: () => now, budgets: { c: { dailyUsd: 10 } }, reservationTtlMs: 60_000, keyPrefix: P, dataDir, logger: quiet });
    // The first process: its settles applied, their ids as its call file kept them.
    const firstDir = folder();
    const first = await open(firstDir);
    const applied: Record<string, string> = {};
    for (const bid of ['x', 'y']) {
      expect(await first.reserve([{ bidId: bid, campaignId: 'c', amountUsd: 0.1, expiresAtMs: now + 30_000 }])).toEqual([true]);
      const settling = first.settle(bid, 0.1, 'win');
      const [file] = readdirSync(join(firstDir, 'redis-calls'));
      const lines = readFileSync(join(firstDir, 'redis-calls', file), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as unknown);
      applied[bid] = (lines.findLast((l) => Array.isArray(l) && l[1] === `${bid}\n1`) as string[])[0];
      expect(await settling).toBe('settled');
    }
    await first.close();
    // Left by two dead processes, in either order for one of the bids: the second's calls set nothing.
    const dir = folder();
    mkdirSync(join(dir, 'redis-calls'));
    const dead = () => spawnSync(process.execPath, ['-e', '']).pid!;
    // Untouched past their heartbeat: processes that are gone.
    const leave = (name: string, lines: string[][]) => {
      const file = join(dir, 'redis-calls', name);
      writeFileSync(file, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
      const t = new Date(Date.now() - 60_000);
      utimesSync(file, t, t);
    };
    leave(`${dead()}-a-t0-a.calls`, [[applied.x, 'x\n1'], ['b.1', 'y\n1']]);
    leave(`${dead()}-b-t0-b.calls`, [['b.2', 'x\n1'], [applied.y, 'y\n1']]);
    const third = await open(dir);
    try {
      for (const bid of ['x', 'y']) {
        expect(await third.settle(bid, 0.1, 'win')).toBe('duplicate');
        expect(await third.claim(bid, 'win', {})).toBe('settled');
      }
    } finally {
      await third.close();
    }
  });
});
