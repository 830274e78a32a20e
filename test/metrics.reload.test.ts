import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSamples } from '../src/harness/prometheus.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * The campaign label follows policy reloads: a campaign a reload adds is counted under its own id
 * (not 'other'), and one it drops loses its budget gauges (which otherwise read their last value,
 * and a budget under 1 USD, forever). Real bidder, real admin reload.
 */
const TOKEN = 'metrics-reload-token-5c4b3a';
const banner = (JSON.parse(readFileSync('openrtb/cases/banner-open-auction.json', 'utf8')) as { request: { id: string } }).request;

describe('metrics across a policy reload', () => {
  let t: TestBidder;
  let policiesDir: string;
  beforeAll(async () => {
    policiesDir = mkdtempSync(join(tmpdir(), 'metrics-reload-'));
    cpSync('policies', policiesDir, { recursive: true });
    t = await startBidder({ adminToken: TOKEN }, policiesDir);
  });
  afterAll(async () => {
    await t?.close();
    rmSync(policiesDir, { recursive: true, force: true });
  });

  const scrape = async () => parseSamples(await (await fetch(t.bidder.opsUrl + '/metrics')).text());
  const series = (samples: Map<string, number>, name: string) => [...samples.keys()].filter((k) => k.startsWith(`${name}{`));
  const campaignsThatBid = async (id: string) => {
    const r = await t.bid({ ...banner, id, tmax: 5000 });
    if (r.status !== 200) return [];
    return ((await r.json()) as { seatbid: Array<{ bid: Array<{ cid: string }> }> }).seatbid.flatMap((s) => s.bid.map((b) => b.cid));
  };

  it('counts bids of a campaign the reload adds under its id and drops the gauges of the one it removes', async () => {
    expect(await campaignsThatBid('before')).toContain('acme-shoes');
    const before = await scrape();
    expect(series(before, 'bidder_budget_remaining_usd').filter((k) => k.includes('campaign="acme-shoes"'))).toHaveLength(1);

    // acme-shoes leaves the policies and acme-shoes-2 comes in with its settings.
    const file = join(policiesDir, 'campaigns.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('  - id: acme-shoes\n', '  - id: acme-shoes-2\n'));
    const r = await fetch(t.url + '/admin/reload/policies', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status, await r.clone().text()).toBe(200);

    let bids = 0;
    for (let i = 0; i < 5; i++) bids += (await campaignsThatBid(`after-${i}`)).filter((c) => c === 'acme-shoes-2').length;
    expect(bids).toBeGreaterThan(0);
    const after = await scrape();
    expect(after.get('bidder_bids_total{campaign="acme-shoes-2"}')).toBe(bids);
    expect(after.get('bidder_bids_total{campaign="other"}')).toBe(0);
    for (const g of ['bidder_budget_remaining_usd', 'bidder_spent_today_usd', 'bidder_overspent_today_usd', 'bidder_spend_target_usd', 'bidder_pacing_multiplier']) {
      const campaigns = series(after, g).map((k) => /campaign="([^"]*)"/.exec(k)![1]);
      expect(campaigns, g).toContain('acme-shoes-2');
      expect(campaigns, g).not.toContain('acme-shoes');
      expect(campaigns, g).not.toContain('other');
    }
  });

  it('counts requests of an exchange the reload adds under its name, not other', async () => {
    const file = join(policiesDir, 'exchanges.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('  demo-eu:\n', '  demo-new:\n    noBid: nbr\n  demo-eu:\n'));
    const r = await fetch(t.url + '/admin/reload/policies', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status, await r.clone().text()).toBe(200);
    const before = await scrape();
    expect(before.get('bidder_requests_total{exchange="demo-new",outcome="bid"}')).toBe(0);
    const other = [...before].filter(([k]) => k.startsWith('bidder_requests_total{exchange="other"')).reduce((s, [, v]) => s + v, 0);
    for (let i = 0; i < 3; i++) expect((await t.bid({ ...banner, id: `new-ex-${i}`, tmax: 5000 }, 'demo-new')).status).toBe(200);
    const after = await scrape();
    const mine = [...after].filter(([k]) => k.startsWith('bidder_requests_total{exchange="demo-new"')).reduce((s, [, v]) => s + v, 0);
    expect(mine).toBe(3);
    expect([...after].filter(([k]) => k.startsWith('bidder_requests_total{exchange="other"')).reduce((s, [, v]) => s + v, 0)).toBe(other);
  });
});
