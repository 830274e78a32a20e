import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { startPrivateRedis } from '../src/harness/redis.js';
import { startBidder } from './helpers/bidder.js';

/**
 * A failover behind one address (a DNS name or a service moved to the promoted replica): the old
 * primary becomes a replica (REPLICAOF) and keeps the bidder's connections, answering every write
 * READONLY. Before the fix the bidder stayed there until restarted: every bid a LEDGER_UNAVAILABLE
 * no-bid, a win in flight abandoned (fix review redisfault).
 */
const req = (id: string) => ({ id, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's', cat: ['IAB12'] } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP endpoint whose new connections go to `target`; open ones stay where they went. */
async function endpoint(first: number): Promise<{ port: number; set(p: number): void; close(): void }> {
  let target = first;
  const socks: Socket[] = [];
  const srv: Server = createServer((c) => {
    const u = connect(target, '127.0.0.1');
    socks.push(c, u);
    c.pipe(u);
    u.pipe(c);
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
    c.on('close', () => u.destroy());
    u.on('close', () => c.destroy());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as { port: number }).port,
    set: (p) => (target = p),
    close: () => {
      for (const s of socks) s.destroy();
      srv.close();
    },
  };
}

describe('Redis ledger after a failover behind one address', () => {
  it('moves to the new primary: bids again, and the win in flight settles there', async () => {
    const a = await startPrivateRedis();
    const b = await startPrivateRedis();
    const adminA = new Redis(a.url);
    const adminB = new Redis(b.url);
    const ep = await endpoint(a.port);
    await adminB.replicaof('127.0.0.1', a.port);
    const data = mkdtempSync(join(tmpdir(), 'failover-'));
    const t = await startBidder({ ledger: { journalPath: data, redisUrl: `redis://127.0.0.1:${ep.port}`, commandTimeoutMs: 500 } as never });
    try {
      const first = await t.bid(req('fo-1'));
      expect(first.status).toBe(200);
      const bid = (await first.json()).seatbid[0].bid[0];
      // The reservation reached the replica before the failover.
      for (let i = 0; i < 100 && (await adminB.exists(`bidder:ledger:r:${bid.id}`)) === 0; i++) await sleep(50);
      await adminB.replicaof('NO', 'ONE');
      await adminA.replicaof('127.0.0.1', b.port);
      ep.set(b.port);

      const win = () => fetch(t.url + bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(bid.price)));
      // The first writes after the failover meet READONLY and drop the connection; the ones after
      // go to the new primary.
      let status = 0;
      for (let i = 0; i < 40 && status !== 200; i++) {
        status = (await t.bid(req(`fo-after-${i}`))).status;
        if (status !== 200) await sleep(250);
      }
      expect(status).toBe(200);
      let settled = '';
      for (let i = 0; i < 40 && settled !== 's'; i++) {
        await win();
        settled = (await adminB.hget(`bidder:ledger:r:${bid.id}`, 'st')) ?? '';
        if (settled !== 's') await sleep(250);
      }
      expect(settled).toBe('s');
      expect(await t.metric('bidder_notices_total', { result: 'abandoned' })).toBe(0);
      expect(await t.metric('bidder_ledger_errors_total', { op: 'reserve' })).toBeGreaterThan(0);
    } finally {
      await t.close();
      adminA.disconnect();
      adminB.disconnect();
      ep.close();
      await a.stop();
      await b.stop();
      rmSync(data, { recursive: true, force: true });
    }
  }, 60_000);
});
