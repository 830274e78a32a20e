// A notice refused as late (410: a render past its bid's expiry, an exchange's notice of a bid the
// ledger has forgotten) still tells that the user saw the ad. A review: with acme-shoes capped at 1
// an hour, an impression tracker fetched 11 min after its bid (noticeTtlMs 10 min), or a win 31 min
// after (past the ledger's retention), was refused before the only cap count, and the user's next
// request got acme-shoes again. Against the real bidder: a 300x250 banner on an IAB12 site is
// acme-shoes' alone.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

type Bid = { id: string; cid: string; nurl?: string; adm: string; price: number };
const MIN = 60_000;
let n = 0;

function policiesWithCap(count: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'fcap-late-'));
  cpSync('policies', dir, { recursive: true });
  const doc = parse(readFileSync(join(dir, 'campaigns.yaml'), 'utf8'));
  for (const c of doc.campaigns) if (c.id === 'acme-shoes') c.frequencyCap = { count, windowSec: 3600 };
  writeFileSync(join(dir, 'campaigns.yaml'), stringify(doc));
  return dir;
}

/** acme-shoes' bid for this user, or undefined. */
async function acme(t: TestBidder, user: string, exchange?: string): Promise<Bid | undefined> {
  const r = await t.bid({ id: `r${n++}`, tmax: 5000, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's1', cat: ['IAB12'] }, user: { id: user } }, exchange);
  if (r.status !== 200) return undefined;
  const j = await r.json();
  return (j.seatbid ?? []).flatMap((s: { bid: Bid[] }) => s.bid).find((x: Bid) => x.cid === 'acme-shoes');
}
const local = (t: TestBidder, url: string) => t.url + url.replace(/^https?:\/\/[^/]+/, '');
const tracker = (b: Bid) => /<img src="([^"]+)" width="1" height="1"/.exec(b.adm)![1].replace(/&#38;/g, '&');
const win = (t: TestBidder, b: Bid) => fetch(local(t, b.nurl!.replace('${AUCTION_PRICE}', String(b.price)).replace('${AUCTION_MIN_TO_WIN}', '')));

describe('a cap of 1: an impression whose notice is refused as late still counts', () => {
  let t: TestBidder;
  let policies: string;
  beforeAll(async () => {
    policies = policiesWithCap(1);
    t = await startBidder({}, policies);
  });
  afterAll(async () => {
    await t?.close();
    rmSync(policies, { recursive: true, force: true });
  });

  it("an impression tracker fetched 11 min after its bid: 410, and the user is capped", async () => {
    const b = await acme(t, 'late-render', 'prebid-server');
    expect(b).toBeDefined();
    t.clock.advance(11 * MIN);
    const spent = await t.metric('bidder_spend_usd_total', { campaign: 'acme-shoes' });
    expect((await fetch(local(t, tracker(b!)))).status).toBe(410);
    // The page's repeat too; nothing moved.
    expect((await fetch(local(t, tracker(b!)))).status).toBe(410);
    expect(await t.metric('bidder_spend_usd_total', { campaign: 'acme-shoes' })).toBe(spent);
    expect(await acme(t, 'late-render', 'prebid-server')).toBeUndefined();
    // acme-shoes still bids for anyone else.
    expect(await acme(t, 'late-render-other', 'prebid-server')).toBeDefined();
  });

  it('a win 31 min after its bid (the ledger has forgotten it): 410, and the user is capped', async () => {
    const b = await acme(t, 'late-win');
    expect(b).toBeDefined();
    t.clock.advance(31 * MIN);
    expect((await win(t, b!)).status).toBe(410);
    expect(await t.metric('bidder_notices_total', { kind: 'win', result: 'expired' })).toBe(1);
    expect(await acme(t, 'late-win')).toBeUndefined();
    expect(await acme(t, 'late-win-other')).toBeDefined();
  });
});

describe('a cap of 2: a late notice counts an impression once', () => {
  let t: TestBidder;
  let policies: string;
  beforeAll(async () => {
    policies = policiesWithCap(2);
    t = await startBidder({}, policies);
  });
  afterAll(async () => {
    await t?.close();
    rmSync(policies, { recursive: true, force: true });
  });

  it('a tracker fetched late after the win counted in time counts nothing more; a late one fetched twice counts once', async () => {
    const first = await acme(t, 'twice', 'prebid-server');
    expect((await win(t, first!)).status).toBe(200);
    t.clock.advance(11 * MIN);
    expect((await fetch(local(t, tracker(first!)))).status).toBe(410);
    // One impression: a second bid.
    const second = await acme(t, 'twice', 'prebid-server');
    expect(second).toBeDefined();
    t.clock.advance(11 * MIN);
    expect((await fetch(local(t, tracker(second!)))).status).toBe(410);
    expect((await fetch(local(t, tracker(second!)))).status).toBe(410);
    expect(await acme(t, 'twice', 'prebid-server')).toBeUndefined();
  });

  it('a render refused as late, then its win heard late (the ledger still settles it): one impression', async () => {
    const b = await acme(t, 'render-then-win', 'prebid-server');
    t.clock.advance(11 * MIN);
    expect((await fetch(local(t, tracker(b!)))).status).toBe(410);
    expect((await win(t, b!)).status).toBe(200);
    expect(await acme(t, 'render-then-win', 'prebid-server')).toBeDefined();
  });
});
