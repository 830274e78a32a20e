// One person whose requests carry different kinds of id (buyeruid where the exchange cookie-synced,
// the advertising id, an extended id, the exchange's user.id) was one user per kind of id to the
// caps: the key was one id, the most lasting the request had (review F1: cap 1 a day, 200 devices
// each seen with buyeruid+ifa+pubcid, ifa+pubcid, pubcid alone, buyeruid again: 600 wins for 200
// allowed; the web case, one exchange with buyeruid+eid and another with the eid alone: cap 1
// delivered 2). Recorded under every key the request has, counted under its first; counted as the
// most over every key, a constant secondary id capped everyone carrying it (fix review: 30 people
// with their own buyeruid and user.id "anonymous", cap 1: 1 bid).
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'freqcap-id-kinds-'));
  cpSync('policies', dir, { recursive: true });
  const doc = parse(readFileSync(join(dir, 'campaigns.yaml'), 'utf8'));
  for (const c of doc.campaigns) if (c.id === 'acme-shoes') c.frequencyCap = { count: 1, windowSec: 86400 };
  writeFileSync(join(dir, 'campaigns.yaml'), stringify(doc));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const banner = (id: string, body: object) => ({ id, tmax: 3000, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's1', cat: ['IAB12'] }, ...body });
async function acme(t: TestBidder, r: object, exchange?: string) {
  const res = await t.bid(r, exchange);
  return res.status === 200 ? (await res.json()).seatbid?.[0]?.bid?.find((x: { cid: string }) => x.cid === 'acme-shoes') : undefined;
}
async function win(t: TestBidder, bid: { nurl: string; price: number }) {
  return (await fetch(t.url + bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(bid.price)))).status;
}

describe('freqcap-id-kinds: a cap over the kinds of id one person is seen with', () => {
  it('cap 1 a day: a device seen with buyeruid+ifa+eid, then ifa+eid, then the eid alone, then buyeruid, wins once', async () => {
    const t = await startBidder({}, dir);
    try {
      const N = 20;
      let wins = 0;
      const eids = (u: number) => [{ source: 'pubcid.org', uids: [{ id: `pubcid-${u}` }] }];
      const ifa = (u: number) => `aebe52e7-03ee-455a-b3c4-${String(u).padStart(12, '0')}`;
      for (let u = 0; u < N; u++) {
        const forms = [
          { user: { buyeruid: `bu-${u}`, eids: eids(u) }, device: { ifa: ifa(u) } },
          { user: { eids: eids(u) }, device: { ifa: ifa(u) } },
          { user: { eids: eids(u) } },
          { user: { buyeruid: `bu-${u}` } },
        ];
        for (const [i, f] of forms.entries()) {
          const b = await acme(t, banner(`u${u}-${i}`, f));
          if (b && (await win(t, b)) === 200) wins++;
        }
      }
      expect(wins).toBe(N);
    } finally {
      await t.close();
    }
  }, 60_000);

  it('cap 1 a day: people with their own buyeruid and one constant user.id or ifa are each bid on', async () => {
    const t = await startBidder({}, dir);
    try {
      let wins = 0;
      for (let u = 0; u < 15; u++) {
        for (const shared of [{ user: { buyeruid: `own-${u}`, id: 'anonymous' } }, { user: { buyeruid: `own-ifa-${u}` }, device: { ifa: 'aebe52e7-03ee-455a-b3c4-00000000abcd' } }]) {
          const b = await acme(t, banner(`s${u}-${wins}`, shared));
          if (b && (await win(t, b)) === 200) wins++;
        }
      }
      expect(wins).toBe(30);
    } finally {
      await t.close();
    }
  }, 60_000);

  it('cap 1 a day: a user.id or a publisher\'s ppid behind another id is not recorded, so it caps no one whose first id it is', async () => {
    const t = await startBidder({}, dir);
    try {
      // Five people with their own buyeruid and the exchange's user 1001 (or ppid 12345) win; then
      // the person whose only id that is is bid on (a fix review: 0 of 1 before).
      let later = 0;
      for (const [k, form] of [
        [(u: number) => ({ user: { buyeruid: `a-${u}`, id: '1001' } }), { user: { id: '1001' } }],
        [(u: number) => ({ user: { buyeruid: `p-${u}` }, device: { ifa: '12345', ifa_type: 'ppid' } }), { device: { ifa: '12345', ifa_type: 'ppid' } }],
      ] as const) {
        for (let u = 0; u < 5; u++) {
          const b = await acme(t, banner(`r${String(k)}-${u}`, (k as (u: number) => object)(u)));
          expect(b).toBeDefined();
          expect(await win(t, b)).toBe(200);
        }
        if (await acme(t, banner(`only-${later}`, form as object))) later++;
      }
      expect(later).toBe(2);
    } finally {
      await t.close();
    }
  }, 60_000);

  it('cap 1 a day: one exchange sends buyeruid and an extended id, another the extended id and its own user.id', async () => {
    const t = await startBidder({}, dir);
    try {
      const N = 10;
      let wins = 0;
      for (let u = 0; u < N; u++) {
        const eids = [{ source: 'id5-sync.com', uids: [{ id: `id5-${u}` }] }];
        for (const [i, f] of [
          [{ user: { buyeruid: `web-${u}`, eids } }, undefined],
          [{ user: { id: `their-${u}`, eids } }, 'demo-eu'],
          [{ user: { buyeruid: `web-${u}` } }, undefined],
        ].entries()) {
          const b = await acme(t, banner(`w${u}-${i}`, f[0] as object), f[1] as string | undefined);
          if (b && (await win(t, b)) === 200) wins++;
        }
      }
      expect(wins).toBe(N);
    } finally {
      await t.close();
    }
  }, 60_000);
});
