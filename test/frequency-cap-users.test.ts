// Which user a frequency cap counts, and for how long the bidder remembers it: against the real
// bidder, acme-shoes capped at 1 an hour (a 300x250 banner on an IAB12 site is acme-shoes' alone,
// so a capped user gets a 204).
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSigner, noticeUrl, noticeUrls } from '../src/notices/sign.js';
import { startBidder, TEST_SECRET, type TestBidder } from './helpers/bidder.js';

let policies: string;
beforeAll(() => {
  policies = mkdtempSync(join(tmpdir(), 'fcap-users-'));
  cpSync('policies', policies, { recursive: true });
  const doc = parse(readFileSync(join(policies, 'campaigns.yaml'), 'utf8'));
  for (const c of doc.campaigns) if (c.id === 'acme-shoes') c.frequencyCap = { count: 1, windowSec: 3600 };
  writeFileSync(join(policies, 'campaigns.yaml'), stringify(doc));
});
afterAll(() => rmSync(policies, { recursive: true, force: true }));

type Bid = { cid: string; nurl: string; price: number };
let n = 0;
const site = { site: { id: 's1', cat: ['IAB12'] } };
const app = (ifa: string) => ({ app: { id: 'a1', bundle: 'com.example', cat: ['IAB12'] }, device: { ifa, os: 'iOS', devicetype: 4 } });

/** acme-shoes' bid for this request (the rest of it in `body`), or undefined. */
async function acme(b: TestBidder, body: Record<string, unknown>, exchange?: string): Promise<Bid | undefined> {
  const r = await b.bid({ id: `r${n++}`, tmax: 3000, imp: [{ id: '1', banner: { w: 300, h: 250 } }], ...body }, exchange);
  if (r.status !== 200) return undefined;
  const j = await r.json();
  return (j.seatbid ?? []).flatMap((s: { bid: Bid[] }) => s.bid).find((x: Bid) => x.cid === 'acme-shoes');
}
async function win(b: TestBidder, x: Bid): Promise<void> {
  const r = await fetch(b.url + x.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(x.price)));
  expect(r.status).toBe(200);
}
/** A won impression for this user key, as the bidder signs them (the user's bid made elsewhere). */
async function impression(b: TestBidder, campaignId: string, creativeId: string, userKey: string): Promise<void> {
  const c = { bidId: `fill-${n++}`, campaignId, creativeId, bidPrice: 0.01, cur: 'USD', rate: 1, exchange: 'default', expiresAtMs: b.clock() + 600_000, userKey };
  const url = noticeUrl(noticeUrls(b.url, c, createSigner(TEST_SECRET).sign(c), { expandPrice: true, nurl: true }), 'win');
  expect((await fetch(url)).status).toBe(200);
}
/** Bid on and won: the user is capped from now. */
async function cap(b: TestBidder, body: Record<string, unknown>, exchange?: string): Promise<void> {
  const x = await acme(b, body, exchange);
  expect(x).toBeDefined();
  await win(b, x!);
  expect(await acme(b, body, exchange)).toBeUndefined();
}

describe('which id a frequency cap counts', () => {
  let b: TestBidder;
  beforeAll(async () => {
    b = await startBidder({}, policies);
  });
  afterAll(() => b?.close());

  it('the same advertising id in another letter case is the same user', async () => {
    const ifa = 'AEBE52E7-03EE-455A-B3C4-E57283966239';
    await cap(b, app(ifa));
    // As an exchange that lower-cases IDFAs sends it, with stray spaces.
    expect(await acme(b, app(` ${ifa.toLowerCase()} `))).toBeUndefined();
  });

  it("an exchange's own user.id names a user of that exchange only; buyeruid is the same user everywhere", async () => {
    await cap(b, { ...site, user: { id: '1001' } });
    // user 1001 of the prebid exchange is somebody else.
    expect(await acme(b, { ...site, user: { id: '1001' } }, 'prebid')).toBeDefined();
    await cap(b, { ...site, user: { buyeruid: 'our-1001' } });
    expect(await acme(b, { ...site, user: { buyeruid: 'our-1001' } }, 'prebid')).toBeUndefined();
  });

  it('a consented user known only by a listed extended id (SharedID) is capped, on every exchange', async () => {
    const user = { eids: [{ source: 'pubcid.org', uids: [{ id: 'c29b1f7a-6a0e-4c4f-9d5e-3f1b2a9c8d71', atype: 1 }] }] };
    await cap(b, { ...site, user });
    expect(await acme(b, { ...site, user }, 'prebid')).toBeUndefined();
  });

  it("people without an ID5 id (ID5's '0', sent without consent) are not one user: one's impression caps nobody else", async () => {
    const id5None = { eids: [{ source: 'id5-sync.com', uids: [{ id: '0', atype: 1, ext: { linkType: 0 } }] }] };
    const first = await acme(b, { ...site, device: { ip: '198.51.100.7' }, user: id5None });
    expect(first).toBeDefined();
    await win(b, first!);
    expect(await acme(b, { ...site, device: { ip: '203.0.113.9' }, user: id5None })).toBeDefined();
  });

  it('a placeholder for an id (an unexpanded macro, "unknown", "null") is nobody: one device\'s impression caps no other, and a real id beside it counts', async () => {
    const placeholders = [
      { device: { ifa: 'unknown' } },
      { device: { ifa: '{IFA}' } },
      { device: { ifa: '[DEVICE_ID]' } },
      { device: { ifa: '%%ADVERTISING_IDENTIFIER_PLAIN%%' } },
      { user: { buyeruid: 'null' } },
      { user: { buyeruid: 'undefined' } },
      { user: { id: '${USER_ID}' } },
    ];
    for (const [i, p] of placeholders.entries()) {
      const first = await acme(b, { ...site, ...p, device: { ip: `198.51.100.${i + 20}`, ...p.device } });
      expect(first, JSON.stringify(p)).toBeDefined();
      await win(b, first!);
      // Another device sending the same placeholder is another person.
      expect(await acme(b, { ...site, ...p, device: { ip: `203.0.113.${i + 20}`, ...p.device } }), JSON.stringify(p)).toBeDefined();
    }
    // A placeholder IFA hid the exchange's user.id sent beside it: that user is capped by it now.
    await cap(b, { ...site, device: { ifa: '{IFA}' }, user: { id: 'beside-placeholder' } });
    expect(await acme(b, { ...site, user: { id: 'beside-placeholder' } })).toBeUndefined();
  });

  it('without a user key (no id, an unlisted source, or user data not allowed) a capped campaign bids every time: the cap cannot be counted', async () => {
    const unlisted = { eids: [{ source: 'example.com', uids: [{ id: 'e-1' }] }] };
    const noConsent = { regs: { gdpr: 1 }, user: { eids: [{ source: 'pubcid.org', uids: [{ id: 'gdpr-1' }] }] } };
    for (const body of [site, { ...site, user: unlisted }, { ...site, ...noConsent }]) {
      for (let i = 0; i < 2; i++) {
        const x = await acme(b, body);
        expect(x).toBeDefined();
        await win(b, x!);
      }
    }
  });
});

describe('a full frequency-cap store (frequencyMaxUsers)', () => {
  let b: TestBidder;
  const lines: string[] = [];
  const capsWarnings = () => lines.map((l) => JSON.parse(l)).filter((l) => l.msg.startsWith('frequency caps'));
  beforeAll(async () => {
    b = await startBidder({ frequencyMaxUsers: 3 }, policies, { logger: pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) }) });
  });
  afterAll(() => b?.close());

  it('keeps a capped user over any number of users whose impressions are no longer capped', async () => {
    // Users of the capped campaign whose hour has passed, then users of an uncapped one: nothing to keep them for.
    for (let i = 0; i < 2; i++) await impression(b, 'acme-shoes', 'acme-300x250', `old-${i}`);
    b.clock.advance(2 * 3_600_000);
    await cap(b, { ...site, user: { id: 'victim' } });
    for (let i = 0; i < 20; i++) await impression(b, 'volt-bank', 'volt-300x250', `uncapped-${i}`);
    expect(await acme(b, { ...site, user: { id: 'victim' } })).toBeUndefined();
    expect(await b.metric('bidder_frequency_evictions_total')).toBe(0);
    expect(capsWarnings()).toEqual([]);
  });

  it('full of capped users, drops the one whose cap lapses first, counts it and says so once', async () => {
    b.clock.advance(60_000);
    for (let i = 0; i < 4; i++) await impression(b, 'acme-shoes', 'acme-300x250', `capped-${i}`);
    // The victim's cap, the first to lapse, was dropped: it is bid on again within its hour.
    expect(await acme(b, { ...site, user: { id: 'victim' } })).toBeDefined();
    expect(await b.metric('bidder_frequency_evictions_total')).toBe(2);
    expect(capsWarnings()).toEqual([expect.objectContaining({ evicted: 1, frequencyMaxUsers: 3, msg: expect.stringContaining('raise frequencyMaxUsers') })]);
  });
});

describe('frequency caps across a restart into a smaller store', () => {
  it('keep the user whose cap still holds over one seen later only by an uncapped campaign', async () => {
    const journal = mkdtempSync(join(tmpdir(), 'fcap-restart-'));
    const ledger = { journalPath: journal, redisUrl: '' } as never;
    try {
      let b = await startBidder({ ledger }, policies);
      await cap(b, { ...site, user: { id: 'capped-user' } });
      b.clock.advance(10_000);
      await impression(b, 'volt-bank', 'volt-300x250', 'passer-by');
      await b.close();
      b = await startBidder({ ledger, frequencyMaxUsers: 1 }, policies);
      try {
        expect(await acme(b, { ...site, user: { id: 'capped-user' } })).toBeUndefined();
      } finally {
        await b.close();
      }
    } finally {
      rmSync(journal, { recursive: true, force: true });
    }
  });
});

describe('frequency caps across a restart without a configured secret', () => {
  it('are kept, with the notices of bids made before it: the secret generated at the first start is kept beside the journal', async () => {
    const journal = mkdtempSync(join(tmpdir(), 'fcap-restart-'));
    const env = process.env.NOTICE_SECRET;
    delete process.env.NOTICE_SECRET;
    const settings = { noticeSecret: '', ledger: { journalPath: journal, redisUrl: '' } } as never;
    try {
      let b = await startBidder(settings, policies);
      await cap(b, { ...site, user: { id: 'restart-user' } });
      const pending = await acme(b, { ...site, user: { id: 'pending-user' } });
      await b.close();
      b = await startBidder(settings, policies);
      try {
        expect(await acme(b, { ...site, user: { id: 'restart-user' } })).toBeUndefined();
        await win(b, pending!);
        expect(await acme(b, { ...site, user: { id: 'pending-user' } })).toBeUndefined();
        expect(statSync(join(journal, 'notice-secret')).mode & 0o777).toBe(0o600);
      } finally {
        await b.close();
      }
    } finally {
      if (env !== undefined) process.env.NOTICE_SECRET = env;
      rmSync(journal, { recursive: true, force: true });
    }
  });
});
