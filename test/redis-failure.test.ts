import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * The bidder on a Redis ledger when Redis goes away and comes back: no bid without a
 * reservation (never bid blind), /readyz says so, and recovery needs nobody. Uses a private
 * redis-server (append-only file on) so the machine's shared one is never disturbed.
 */
const haveRedis = spawnSync('redis-server', ['--version']).status === 0;
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (the fleet suites run against a real Redis)');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''], { stdio: 'ignore' });
  return new Promise((resolve) => {
    const poll = () => (spawnSync('redis-cli', ['-p', String(port), 'ping']).stdout?.toString().trim() === 'PONG' ? resolve(p) : setTimeout(poll, 50));
    poll();
  });
}

const req = (id: string) => ({ id, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's', cat: ['IAB12'] } });

describe.skipIf(!haveRedis)('Redis ledger failure and recovery', () => {
  let t: TestBidder;
  let redis: ChildProcess;
  let port: number;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'redis-fail-'));
    port = await freePort();
    redis = await startRedis(port, dir);
    t = await startBidder({ ledger: { journalPath: join(dir, 'ledger'), redisUrl: `redis://127.0.0.1:${port}` } });
  });
  afterAll(async () => {
    await t?.close();
    redis?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('bids while Redis answers, no-bids and is not ready while it is down, recovers by itself', async () => {
    expect((await fetch(t.url + '/readyz')).status).toBe(200);
    const first = await t.bid(req('f1'));
    expect(first.status).toBe(200);
    const bid = (await first.json()).seatbid[0].bid[0];
    await fetch(t.url + bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(bid.price)));

    redis.kill('SIGKILL');
    await new Promise((r) => redis.once('exit', r));
    const down = await t.bid(req('f2'));
    expect(down.status).toBe(204);
    expect(await t.metric('bidder_nobid_total', { reason: 'LEDGER_UNAVAILABLE' })).toBe(1);
    expect(await t.metric('bidder_ledger_errors_total', { op: 'reserve' })).toBeGreaterThanOrEqual(1);
    const ready = await fetch(t.url + '/readyz');
    expect(ready.status).toBe(503);
    expect((await ready.json()).reason).toMatch(/ledger unavailable/);

    // Same data directory: the append-only file brings the settled spend back.
    redis = await startRedis(port, dir);
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await fetch(t.url + '/readyz')).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    expect((await t.bid(req('f3'))).status).toBe(200);
    expect(await t.metric('bidder_budget_remaining_usd', { campaign: bid.cid })).toBeLessThan(
      // The settled win survived the restart: remaining budget is below the full daily budget.
      2000 - bid.price / 1000 + 1e-6,
    );
  });
});
