// A fleet: the win notice reaches another bidder than the one that bid, which has no record of the
// bid and counts the cap under the user keys the URL carries, signed (`uk`). Those are every key
// the bid request had (one per kind of id), so a later request with any one of them is capped; a
// URL with one key (every URL of the versions before, whose key is the first of today's) still
// verifies and counts.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, expect, it } from 'vitest';
import type { Settings } from '../src/config/settings.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { connectRedis, describeWithRedis, dropKeysAndQuit, REDIS_URL } from './helpers/redis.js';

// Database 15: the reviewers' and these tests' own.
const URL15 = `${REDIS_URL.replace(/\/\d+$/, '')}/15`;
const client = await connectRedis(URL15);

const banner = (id: string, body: object) => ({ id, tmax: 3000, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's1', cat: ['IAB12'] }, ...body });
async function acme(t: TestBidder, r: object) {
  const res = await t.bid(r);
  return res.status === 200 ? (await res.json()).seatbid?.[0]?.bid?.find((x: { cid: string }) => x.cid === 'acme-shoes') : undefined;
}
async function win(t: TestBidder, bid: { nurl: string; price: number }) {
  return (await fetch(t.url + bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(bid.price)))).status;
}

describeWithRedis('freqcap-id-kinds-fleet: the win counted by another bidder, from the signed keys', URL15, client, (admin) => {
  const prefix = `test:fcidk:${process.pid}:${Date.now().toString(36)}:`;
  const dir = mkdtempSync(join(tmpdir(), 'freqcap-id-kinds-fleet-'));
  cpSync('policies', dir, { recursive: true });
  const doc = parse(readFileSync(join(dir, 'campaigns.yaml'), 'utf8'));
  for (const c of doc.campaigns) if (c.id === 'acme-shoes') c.frequencyCap = { count: 1, windowSec: 86400 };
  writeFileSync(join(dir, 'campaigns.yaml'), stringify(doc));
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await dropKeysAndQuit(admin, prefix);
  });
  const ledger = (name: string) => ({ ledger: { journalPath: join(dir, `ledger-${name}`), redisUrl: URL15, keyPrefix: prefix, commandTimeoutMs: 2000 } as Settings['ledger'] });

  it('a win heard by B caps the user on B under each id the bid request to A had; a one-key URL counts too', async () => {
    const a = await startBidder(ledger('a'), dir);
    const b = await startBidder(ledger('b'), dir);
    try {
      const ifa = 'aebe52e7-03ee-455a-b3c4-000000000777';
      const first = await acme(a, banner('k1', { user: { buyeruid: 'fleet-bu', eids: [{ source: 'pubcid.org', uids: [{ id: 'fleet-pubcid' }] }] }, device: { ifa } }));
      expect(first).toBeDefined();
      const uk = new URL(first.nurl.replace('${AUCTION_PRICE}', '1')).searchParams.get('uk')!;
      // Three keys of 16 characters one after the other: the `uk` the version before accepts
      // (one to 64 base64url characters), so in a rolling deploy its processes still settle the
      // notice (with '.' between the keys they refused it as malformed, the money unrecorded).
      expect(uk).toMatch(/^[A-Za-z0-9_-]{48}$/);
      expect(await win(b, first)).toBe(200);
      // On B, which had none of these keys before: each kind alone is the capped user.
      expect(await acme(b, banner('k2', { device: { ifa } }))).toBeUndefined();
      expect(await acme(b, banner('k3', { user: { eids: [{ source: 'pubcid.org', uids: [{ id: 'fleet-pubcid' }] }] } }))).toBeUndefined();
      expect(await acme(b, banner('k4', { user: { buyeruid: 'fleet-bu' } }))).toBeUndefined();

      // One id, one key: the URL as the versions before wrote it.
      const one = await acme(a, banner('o1', { user: { buyeruid: 'fleet-one' } }));
      expect(new URL(one.nurl.replace('${AUCTION_PRICE}', '1')).searchParams.get('uk')).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(await win(b, one)).toBe(200);
      expect(await acme(b, banner('o2', { user: { buyeruid: 'fleet-one' }, device: { ifa: 'aebe52e7-03ee-455a-b3c4-000000000888' } }))).toBeUndefined();
    } finally {
      await a.close();
      await b.close();
    }
  }, 60_000);
});
