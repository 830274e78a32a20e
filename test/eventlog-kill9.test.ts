import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectRedis, REDIS_URL } from './helpers/redis.js';
import { TEST_SECRET } from './helpers/bidder.js';
import { startHeldThreadBidder } from './helpers/held-thread-bidder.js';

const client = await connectRedis();
if (!client && process.env.CI === 'true') throw new Error(`Redis unreachable at ${REDIS_URL}: the kill -9 suite needs it in CI`);

describe.skipIf(!client)('event log under kill -9', () => {
  const prefix = `test:eventlog-kill9:${process.pid}:${Date.now().toString(36)}:`;
  const dirs: string[] = [];
  afterAll(async () => {
    const keys = await client!.keys(`${prefix}*`);
    if (keys.length) await client!.del(...keys);
    client!.disconnect();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('every win answered 200 is in the log file when the process is killed right after (it was only queued for a later turn), its bid record\'s write held or not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eventlog-kill9-'));
    dirs.push(dir);
    const events = join(dir, 'events');
    const overrides = {
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      noticeSecret: TEST_SECRET,
      seed: 'kill9',
      eventLog: { dir: events, rotateBytes: 1 << 20, enabled: true, keepBytes: 0 },
      // Redis's ledger (sockets, no thread pool): the journal's fdatasync would wait on the held thread too.
      ledger: { journalPath: join(dir, 'ledger'), redisUrl: REDIS_URL, keyPrefix: prefix, commandTimeoutMs: 2000 },
    };
    const { child, exited, listening, policiesDir } = startHeldThreadBidder(dir, overrides);
    try {
      const { url } = await listening;
      const onDisk = () =>
        existsSync(events)
          ? readdirSync(events).flatMap((f) => readFileSync(join(events, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; bidId: string; priceCpmUsd?: number }))
          : [];
      const bids = [];
      for (let i = 0; i < 8; i++) {
        const body = { id: `k${i}`, at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] }, user: { id: `u${i}` } };
        const r = await fetch(url + '/openrtb2/bid', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
        if (r.status === 200) bids.push((await r.json()).seatbid[0].bid[0] as { id: string; price: number; nurl: string });
      }
      expect(bids.length).toBeGreaterThan(3);
      const answered: Array<{ bidId: string; price: number }> = [];
      for (const b of bids) {
        const price = +(b.price * 0.5).toFixed(4);
        const r = await fetch(url + b.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(price)).replace('${AUCTION_MIN_TO_WIN}', ''));
        expect(r.status).toBe(200);
        answered.push({ bidId: b.id, price });
        // What a kill -9 at this moment would leave.
        expect(onDisk().filter((r) => r.type === 'win').map((r) => r.bidId)).toEqual(answered.map((a) => a.bidId));
      }
      child.kill('SIGKILL');
      await exited;
      const left = onDisk();
      expect(left.filter((r) => r.type === 'win').map((r) => [r.bidId, r.priceCpmUsd])).toEqual(answered.map((a) => [a.bidId, a.price]));
      // The bids' records were left to the thread pool, held all along: no bid's answer, nor a
      // win's, waited on them. Such a kill loses them; the report counts the wins without their bids.
      expect(left.filter((r) => r.type === 'bid')).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });
});
