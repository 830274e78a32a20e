import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Settings } from '../src/config/settings.js';
import { createFleetNoticePeers, peersChannel } from '../src/fleet/peers.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { connectRedis, describeWithRedis, dropKeysAndQuit, REDIS_URL } from './helpers/redis.js';

/**
 * Notices across the processes of a fleet (src/fleet/peers.ts). A load balancer sends a bid's
 * notices to any process; only the one that bid knows the bid's segment, so before this channel a
 * first-price win or loss heard by a sibling never taught the bidding process's shader (which then
 * shaded from the notices routed back to it alone). Against a real Redis (a database of 10-15, a
 * key prefix of this run); in CI (CI=true) an unreachable Redis fails the run, elsewhere the suite
 * is skipped.
 */
const base = REDIS_URL.replace(/\/\d+$/, '');
const url = `${base}/${10 + (process.pid % 6)}`;
const client = await connectRedis(url);
const keyPrefix = `test:notice-peers:${process.pid}:${Date.now().toString(36)}:`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeWithRedis('fleet notice peers', url, client, () => {
  /** Until `n` connections listen on the fleet's channel, or 2 s (the assertions after it say what went wrong). */
  const subscribed = async (n: number) => {
    const channel = peersChannel(keyPrefix, Number(new URL(url).pathname.slice(1)));
    for (let i = 0; i < 200; i++) {
      const [, count] = (await client.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
      if (Number(count) >= n) return;
      await sleep(10);
    }
  };

  afterAll(() => dropKeysAndQuit(client, keyPrefix));

  describe('fleet notice peers through two bidders on one Redis', () => {
    let dir = '';
    let a: TestBidder;
    let b: TestBidder;
    const ledger = (name: string) => ({ ledger: { journalPath: join(dir, name), redisUrl: url, keyPrefix, commandTimeoutMs: 2000 } as Settings['ledger'] });

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'notice-peers-'));
      cpSync('policies', join(dir, 'policies'), { recursive: true });
      const file = join(dir, 'policies', 'campaigns.yaml');
      writeFileSync(file, readFileSync(file, 'utf8').replace(/dailyUsd: [\d.]+/g, 'dailyUsd: 50, pacing: asap'));
      a = await startBidder(ledger('a'), join(dir, 'policies'));
      b = await startBidder(ledger('b'), join(dir, 'policies'));
      await subscribed(2);
    });
    afterAll(async () => {
      await b?.close();
      await a?.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    });

    const firstPrice = (id: string) => ({ ...JSON.parse(readFileSync('openrtb/examples/banner-first-price.request.json', 'utf8')), id });
    /** `notice` with the exchange's macros expanded, sent to `to` instead of the bidder that issued it. */
    const sendTo = (to: TestBidder, notice: string, price: number) =>
      fetch(
        notice
          .replace(/^https?:\/\/[^/]+/, to.url)
          .replaceAll('${AUCTION_PRICE}', price.toFixed(4))
          .replaceAll('${AUCTION_MIN_TO_WIN}', (price * 0.9).toFixed(4))
          .replaceAll('${AUCTION_LOSS}', '102'),
      );

    /** A's first-price bid (a request it no-bids, a deadline missed on a loaded host, is asked again). */
    const bidOf = async (t: TestBidder, id: string) => {
      let status = 0;
      for (let i = 0; i < 10; i++) {
        const r = await t.bid(firstPrice(`${id}-${i}`));
        status = r.status;
        if (status === 200) return (await r.json()).seatbid[0].bid[0];
        await r.arrayBuffer();
        await sleep(50);
      }
      throw new Error(`no bid (last answer ${status})`);
    };

    it("a first-price bid of A whose win and loss notices reach B teaches A's shader", async () => {
      const won = await bidOf(a, 'peers-won');
      const lost = await bidOf(a, 'peers-lost');
      expect((await sendTo(b, won.nurl, won.price)).status).toBe(200);
      expect((await sendTo(b, lost.lurl, lost.price * 1.5)).status).toBe(200);
      // B settled and released them in the shared ledger.
      expect(await b.metric('bidder_notices_total', { kind: 'win', result: 'ok' })).toBe(1);
      expect(await b.metric('bidder_notices_total', { kind: 'loss', result: 'ok' })).toBe(1);
      await sleep(200);
      // A's shader, as A keeps it (learned.json, written at close): both auctions observed. Before,
      // they reached B's handler alone, which does not know the bids, and A's shader had nothing.
      await a.close();
      const learned = JSON.parse(readFileSync(join(dir, 'a', 'learned.json'), 'utf8')) as { shader: { fits: Array<[string, number, number, number]> } };
      const pooled = learned.shader.fits.find((f) => f[0] === '*');
      expect(pooled?.[3]).toBe(2);
    });
  });

  describe('fleet notice peers, the channel', () => {
    it('hands what one group tells to the others, a batch per turn, and never back to its own group', async () => {
      const logger = pino({ level: 'silent' });
      const heard: Record<string, unknown[][]> = { p: [], w1: [], w2: [] };
      const local = { group: 'process-w', told: [] as unknown[][], tell(...a: unknown[]) { this.told.push(a); } };
      // One process (p) and two workers of another (w1, w2: one group, which tell each other themselves).
      const p = createFleetNoticePeers({ client, keyPrefix, apply: (...a) => void heard.p.push(a), logger });
      const w1 = createFleetNoticePeers({ client, keyPrefix, local, apply: (...a) => void heard.w1.push(a), logger });
      const w2 = createFleetNoticePeers({ client, keyPrefix, local: { ...local, tell() {} }, apply: (...a) => void heard.w2.push(a), logger });
      try {
        await subscribed(3);
        w1.tell('bid-1');
        w1.tell('bid-1', true, 1.25);
        p.tell('bid-2', false);
        await sleep(200);
        expect(local.told).toEqual([['bid-1', undefined, undefined], ['bid-1', true, 1.25]]);
        expect(heard.p).toEqual([['bid-1', undefined, undefined], ['bid-1', true, 1.25]]);
        // w2 heard w1's notices on the workers' own channel: not again from Redis.
        expect(heard.w2).toEqual([['bid-2', false, undefined]]);
        expect(heard.w1).toEqual([['bid-2', false, undefined]]);
        // A message of another version (a later release in a rolling deploy) is ignored.
        await client.publish(p.channel, JSON.stringify([2, 'x', 'bid-3', 1, null]));
        await client.publish(p.channel, 'not json');
        await sleep(100);
        expect(heard.p).toHaveLength(2);
      } finally {
        p.close();
        w1.close();
        w2.close();
      }
    });
  });
});
