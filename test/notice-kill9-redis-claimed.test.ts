import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createBidder } from '../src/bidder.js';
import { metricSum } from '../src/harness/prometheus.js';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';
import { TEST_SECRET } from './helpers/bidder.js';
import { firstBid, loggedWins, startHeldThreadBidder } from './helpers/held-thread-bidder.js';

const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (the fleet suites run against a real Redis)');

/**
 * A proxy to Redis whose replies stop once `hold` is set: Redis applies what the bidder sends, and
 * the bidder never hears it, as when the process dies between Redis's reply and its handling.
 */
function replyHoldingProxy(port: number): Promise<{ url: string; hold: () => void; close: () => void }> {
  let held = false;
  const sockets: Socket[] = [];
  const server: Server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.push(client, upstream);
    client.on('data', (b) => upstream.write(b));
    upstream.on('data', (b) => {
      if (!held) client.write(b);
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port: p } = server.address() as { port: number };
      resolve({
        url: `redis://127.0.0.1:${p}`,
        hold: () => (held = true),
        close: () => {
          for (const s of sockets) s.destroy();
          server.close();
        },
      });
    }),
  );
}

describe.skipIf(!haveRedis)('a win on the Redis ledger whose reply a kill -9 cuts off', () => {
  const cleanup: Array<() => unknown> = [];
  afterAll(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it("is counted when the exchange's retry reaches the restarted bidder: the settle it made before the kill is claimed, and logged once", async () => {
    const redis: PrivateRedis = await startPrivateRedis();
    cleanup.push(() => redis.stop());
    const proxy = await replyHoldingProxy(redis.port);
    cleanup.push(() => proxy.close());
    const admin = new Redis(redis.url);
    cleanup.push(() => admin.disconnect());
    const dir = mkdtempSync(join(tmpdir(), 'notice-kill9-redis-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const events = join(dir, 'events');
    const overrides = (redisUrl: string) => ({
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      noticeSecret: TEST_SECRET,
      seed: 'kill9-redis',
      eventLog: { dir: events, rotateBytes: 1 << 20, enabled: true, keepBytes: 0 },
      // A reply held this long is still awaited at the kill: the settle neither failed nor answered.
      ledger: { journalPath: join(dir, 'ledger'), redisUrl, commandTimeoutMs: 30_000 },
      ...(process.env.TEST_MODELS_DIR ? { modelsDir: process.env.TEST_MODELS_DIR } : {}),
    });
    const { child, exited, listening, policiesDir } = startHeldThreadBidder(dir, overrides(proxy.url));
    const wins = (bidId: string) => loggedWins(events, bidId);
    let bid: { id: string; price: number; nurl: string } | undefined;
    let winUrl = '';
    let price = 0;
    try {
      const { url } = await listening;
      bid = await firstBid(url);
      expect(bid).toBeDefined();
      price = +(bid!.price * 0.5).toFixed(4);
      winUrl = bid!.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(price)).replace('${AUCTION_MIN_TO_WIN}', '');
      proxy.hold();
      const answer = fetch(url + winUrl).then(
        (r) => r.status,
        () => 'no answer',
      );
      // Settled in Redis; the bidder waits for the reply.
      while ((await admin.hget(`bidder:ledger:r:${bid!.id}`, 'st')) !== 's') await new Promise((r) => setTimeout(r, 10));
      child.kill('SIGKILL');
      await exited;
      expect(await answer).toBe('no answer');
      expect(wins(bid!.id)).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }

    const b = await createBidder({ policiesDir, watchModels: false, overrides: overrides(redis.url) });
    try {
      const retry = await fetch(b.url + winUrl);
      expect(retry.status).toBe(200);
      // A second retry is the duplicate it is.
      expect((await fetch(b.url + winUrl)).status).toBe(200);
      const text = await (await fetch(b.opsUrl + '/metrics')).text();
      expect(metricSum(text, 'bidder_notices_total', { kind: 'win', result: 'ok' })).toBe(1);
      expect(metricSum(text, 'bidder_notices_total', { kind: 'win', result: 'duplicate' })).toBe(1);
    } finally {
      await b.close();
    }
    expect(wins(bid!.id).map((r) => r.priceCpmUsd)).toEqual([price]);
  });
});
