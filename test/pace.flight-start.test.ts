import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createBidder } from '../src/bidder.js';
import { metricSum } from '../src/harness/prometheus.js';
import { mulberry32, sampleNormal } from '../src/pace/index.js';
import { TEST_SECRET, testClock } from './helpers/bidder.js';
import { pacedCampaign, pacedPolicies } from './helpers/pacing-policies.js';

/** The real bidder's first flight day, for a flight campaign loaded before its start and one loaded at it. */
const scratch = mkdtempSync(join(tmpdir(), 'pace-flight-start-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const policies = () => pacedPolicies(scratch, pacedCampaign('flight', '{ dailyUsd: 0.5, start: "2026-06-02", end: "2026-06-30" }'));

const request = (id: string) => ({ id, at: 2, tmax: 5000, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] }, device: { ua: 'x' } });
const afterSync = () => new Promise((r) => setTimeout(r, 300));

/** Boots a bidder at `loadedAt`, then plays 00:00-02:00 of June 2 (its first flight day); returns the spend by 02:00. */
async function firstTwoHours(loadedAt: string): Promise<number> {
  const clock = testClock(loadedAt);
  const state = mkdtempSync(join(scratch, 'state-'));
  const bidder = await createBidder({
    policiesDir: policies(),
    clock,
    watchModels: false,
    overrides: {
      host: '127.0.0.1', port: 0, logLevel: 'silent', noticeSecret: TEST_SECRET, adminToken: 'pace-admin-token-0123', seed: 'test', fleetSyncMs: 100,
      eventLog: { dir: join(state, 'events'), rotateBytes: 1 << 20, enabled: true },
      ledger: { journalPath: join(state, 'ledger'), redisUrl: '' },
      ...(process.env.TEST_MODELS_DIR ? { modelsDir: process.env.TEST_MODELS_DIR } : {}),
    },
  });
  // The ledger sync runs (every 100 ms of real time) before and after midnight.
  await afterSync();
  clock.set('2026-06-02T00:00:00Z');
  await afterSync();
  // One request every 20 s; the market's price log-normal around 1.5 USD CPM (second price): a
  // win at it when the bid reaches it, else a loss notice.
  const rnd = mulberry32(3);
  const path = (u: string) => u.replace(/^https?:\/\/[^/]+/, '');
  for (let i = 0; i < 360; i++) {
    clock.advance(20_000);
    const r = await fetch(`${bidder.url}/openrtb2/bid`, { method: 'POST', body: JSON.stringify(request(`r${i}`)), headers: { 'content-type': 'application/json' } });
    const price = Math.exp(Math.log(1.5) + 0.5 * sampleNormal(rnd));
    if (r.status !== 200) continue;
    const b = ((await r.json()) as { seatbid: Array<{ bid: Array<{ nurl: string; lurl: string; price: number }> }> }).seatbid[0].bid[0];
    if (b.price >= price) await fetch(bidder.url + path(b.nurl).replace('${AUCTION_PRICE}', price.toFixed(4)));
    else await fetch(bidder.url + path(b.lurl).replace('${AUCTION_LOSS}', '102').replace('${AUCTION_MIN_TO_WIN}', price.toFixed(4)));
  }
  const spent = metricSum(await (await fetch(bidder.opsUrl + '/metrics')).text(), 'bidder_spent_today_usd', { campaign: 'flight' });
  await bidder.close();
  return spent;
}

describe('the first day of a flight', () => {
  it('is paced alike whether the campaign was loaded the day before or at its start: about 2/24 of the budget by 02:00', async () => {
    const atStart = await firstTwoHours('2026-06-02T00:00:00Z');
    const dayBefore = await firstTwoHours('2026-06-01T12:00:00Z');
    // Before: the day before its flight was learnt as a day without traffic, and the campaign
    // loaded then had spent 0.499 of its 0.5 by 02:00 (the other 0.035).
    expect(atStart).toBeLessThan(0.1);
    expect(dayBefore).toBeLessThan(0.1);
  }, 120_000);
});
