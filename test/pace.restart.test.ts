import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createBidder } from '../src/bidder.js';
import { metricSum } from '../src/harness/prometheus.js';
import { TEST_SECRET, testClock } from './helpers/bidder.js';
import { pacedCampaign, pacedPolicies } from './helpers/pacing-policies.js';

/**
 * The pacer of a real bidder across restarts, reloads and midnight, each bidder on the same state
 * folder (journal ledger, learned.json) as the one before. Every win costs 0.005 USD (CPM 5).
 */
const scratch = mkdtempSync(join(tmpdir(), 'pace-restart-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const campaign = pacedCampaign;
const policies = (...campaigns: string[]) => pacedPolicies(scratch, ...campaigns);

const request = (id: string) => ({
  id,
  at: 2,
  tmax: 5000,
  imp: [{ id: '1', banner: { w: 300, h: 250 } }],
  site: { id: 's1', domain: 'news.example', cat: ['IAB12'] },
  device: { ua: 'x' },
});

async function boot(policiesDir: string, state: string, clock: ReturnType<typeof testClock>, fleetSyncMs = 5_000) {
  mkdirSync(state, { recursive: true });
  const bidder = await createBidder({
    policiesDir,
    clock,
    watchModels: false,
    overrides: {
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      noticeSecret: TEST_SECRET,
      adminToken: 'pace-admin-token-0123',
      seed: 'test',
      fleetSyncMs,
      eventLog: { dir: join(state, 'events'), rotateBytes: 1 << 20, enabled: true },
      ledger: { journalPath: join(state, 'ledger'), redisUrl: '' },
      ...(process.env.TEST_MODELS_DIR ? { modelsDir: process.env.TEST_MODELS_DIR } : {}),
    },
  });
  await new Promise((r) => setTimeout(r, 15));
  const bid = async (id: string): Promise<{ nurl: string } | undefined> => {
    const r = await fetch(`${bidder.url}/openrtb2/bid`, { method: 'POST', body: JSON.stringify(request(id)), headers: { 'content-type': 'application/json' } });
    return r.status === 200 ? ((await r.json()) as { seatbid: Array<{ bid: Array<{ nurl: string }> }> }).seatbid[0].bid[0] : undefined;
  };
  const win = async (b: { nurl: string }) => {
    const r = await fetch(bidder.url + b.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', '5'));
    expect(r.status).toBe(200);
  };
  return {
    bidder,
    bid,
    win,
    /**
     * `n` requests 11 s apart, each bid won at once; returns the wins. `pauseMs` of real time
     * between them lets the ledger sync run: one that reads a win the pacer is still being told of
     * counts it twice until the next.
     */
    async spend(tag: string, n: number, pauseMs = 0): Promise<number> {
      let wins = 0;
      for (let i = 0; i < n; i++) {
        if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
        clock.advance(11_000);
        const b = await bid(`${tag}-${i}`);
        if (b === undefined) continue;
        await win(b);
        wins++;
      }
      return wins;
    },
    async spentToday(campaignId: string): Promise<number> {
      return metricSum(await (await fetch(bidder.opsUrl + '/metrics')).text(), 'bidder_spent_today_usd', { campaign: campaignId });
    },
    async reload(): Promise<void> {
      const r = await fetch(bidder.opsUrl + '/admin/reload/policies', { method: 'POST', headers: { authorization: 'Bearer pace-admin-token-0123' } });
      expect(r.status).toBe(200);
    },
    close: () => bidder.close(),
  };
}

/** Waits for the bidder's ledger sync (every `fleetSyncMs` of real time) to have run. */
const afterSync = () => new Promise((r) => setTimeout(r, 300));

describe('pacer state across restarts', () => {
  // The ledger's budget of today tells the days before where the lifetime cuts it (0.3 a day);
  // where it does not (0.2 a day), learned.json does.
  it.each([0.3, 0.2])("a flight's day target counts the days before a restart: 0.3 USD over 3 days is 0.1 a day, restarted each midnight (at most %s a day)", async (daily) => {
    const dir = policies(campaign('flight', `{ dailyUsd: ${daily}, lifetimeUsd: 0.3, start: "2026-06-01", end: "2026-06-03", pacing: asap }`));
    const state = mkdtempSync(join(scratch, 'state-'));
    const clock = testClock('2026-06-01T00:00:00Z');
    const perDay: number[] = [];
    for (let d = 1; d <= 3; d++) {
      clock.set(`2026-06-0${d}T00:00:00Z`);
      const b = await boot(dir, state, clock);
      await b.spend(`d${d}`, 40);
      perDay.push(await b.spentToday('flight'));
      await b.close();
    }
    // Without the days before, day 2 aimed at half the flight (0.15) and left day 3 0.05.
    expect(perDay).toEqual([0.1, 0.1, 0.1]);
  }, 60_000);

  it('a flight campaign added back by a reload counts its spend of the days before, once the ledger sync ran', async () => {
    const flight = campaign('flight', '{ dailyUsd: 0.3, lifetimeUsd: 0.3, start: "2026-06-01", end: "2026-06-03", pacing: asap }');
    const other = campaign('other', '{ dailyUsd: 1 }', 'other.example');
    const dir = policies(flight, other);
    const clock = testClock('2026-06-01T00:00:00Z');
    const b = await boot(dir, mkdtempSync(join(scratch, 'state-')), clock, 100);
    await b.spend('d1', 40, 20);
    expect(await b.spentToday('flight')).toBe(0.1);
    writeFileSync(join(dir, 'campaigns.yaml'), `campaigns:\n${other}`);
    await b.reload();
    clock.set('2026-06-02T00:00:00Z');
    writeFileSync(join(dir, 'campaigns.yaml'), `campaigns:\n${flight}${other}`);
    await b.reload();
    await afterSync();
    await b.spend('d2', 40, 20);
    expect(await b.spentToday('flight')).toBe(0.1);
    await b.close();
  }, 60_000);

  it("an hourly cap holds across a restart within the hour: the hour's spend is carried in learned.json", async () => {
    const dir = policies(campaign('hourly', '{ dailyUsd: 0.2, pacing: asap, hourlyCapShare: 0.1 }'));
    const state = mkdtempSync(join(scratch, 'state-'));
    const clock = testClock('2026-06-01T12:00:00Z');
    let b = await boot(dir, state, clock);
    expect(await b.spend('a', 20)).toBe(4); // the hour's 0.02 USD
    await b.close();
    b = await boot(dir, state, clock);
    expect(await b.spend('b', 20)).toBe(0);
    expect(await b.spentToday('hourly')).toBe(0.02);
    // The next hour has its own cap.
    clock.set('2026-06-01T13:00:01Z');
    expect(await b.spend('c', 20)).toBe(4);
    await b.close();
  }, 60_000);

  it('an hourly cap holds when a reload drops the campaign and a later one adds it back within the hour', async () => {
    const hourly = campaign('hourly', '{ dailyUsd: 0.2, pacing: asap, hourlyCapShare: 0.1 }');
    const other = campaign('other', '{ dailyUsd: 1 }', 'other.example');
    const dir = policies(hourly, other);
    const clock = testClock('2026-06-01T12:00:00Z');
    const b = await boot(dir, mkdtempSync(join(scratch, 'state-')), clock, 100);
    expect(await b.spend('a', 20, 20)).toBe(4); // the hour's 0.02 USD
    writeFileSync(join(dir, 'campaigns.yaml'), `campaigns:\n${other}`);
    await b.reload();
    writeFileSync(join(dir, 'campaigns.yaml'), `campaigns:\n${hourly}${other}`);
    await b.reload();
    await afterSync();
    // Before: the pace built anew had spent nothing this hour, and bid to 0.04.
    expect(await b.spend('b', 20, 20)).toBe(0);
    expect(await b.spentToday('hourly')).toBe(0.02);
    await b.close();
  }, 60_000);

  it("wins of the day before that arrive after midnight do not hold back the new day's first hour", async () => {
    const dir = policies(campaign('mid', '{ dailyUsd: 0.02, pacing: asap }'));
    const clock = testClock('2026-06-01T23:50:00Z');
    const b = await boot(dir, mkdtempSync(join(scratch, 'state-')), clock, 100);
    const held: Array<{ nurl: string }> = [];
    for (let i = 0; i < 10; i++) {
      clock.advance(11_000);
      const x = await b.bid(`late-${i}`);
      if (x !== undefined) held.push(x);
    }
    expect(held).toHaveLength(4); // the day's 0.02 USD, reserved
    clock.set('2026-06-02T00:00:05Z');
    for (const x of held) await b.win(x);
    // The ledger files them under their bids' day: the new day's budget is whole.
    expect(await b.spentToday('mid')).toBe(0);
    await afterSync();
    expect(await b.spend('new', 20, 20)).toBe(4);
    expect(await b.spentToday('mid')).toBe(0.02);
    await b.close();
  }, 60_000);
});
