import { describe, expect, it } from 'vitest';
import { createValuePacer, mulberry32, sampleNormal } from '../src/pace/index.js';

/**
 * A campaign's first day (added by a reload, a new flight, a restart without its learnt counts)
 * forecasts the rest of the day from the shape of the day's traffic. Planned on an even day, on a
 * diurnal market one added at 16:00 took the busy afternoon for an average hour, expected the
 * evening to be as busy, and spent 79 % of its budget (0.853 of the value hindsight buys). The
 * process learns the shape from its own bid requests (`onRequest`), campaigns or not.
 */
const HOUR = 3_600_000;
const DAY = 86_400_000;
const DAY0 = Date.UTC(2026, 5, 10);
const GAP = 10_000;
const SHAPE = [0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.3, 0.2];
const BUDGET = 1;

/**
 * Two days of a second-price market (values and prices log-normal, CPM), a request every 10 s
 * thinned to SHAPE. Day 1: no campaign, requests counted. Day 2: campaign c added at 16:00;
 * `restartAt` (hour of day 2): the pacer is built again then, from its snapshot.
 */
function run(restartAt?: number) {
  let now = DAY0;
  const clock = () => now;
  const mk = () => createValuePacer({ clock, random: mulberry32(7), campaigns: [] });
  let pacer = mk();
  const market = mulberry32(1234);
  const camp = { id: 'c', budget: { dailyUsd: BUDGET } };
  let present = false;
  let restarted = restartAt === undefined;
  let spent = 0;
  let lateSpend = 0;
  for (now = DAY0; now < DAY0 + 2 * DAY; now += GAP) {
    const hod = ((now - DAY0) % DAY) / HOUR;
    const day2 = now >= DAY0 + DAY;
    if (day2 && !restarted && hod >= restartAt!) {
      const snap = JSON.parse(JSON.stringify(pacer.snapshot()));
      pacer = mk();
      pacer.restore(snap);
      restarted = true;
    }
    if (day2 && !present && hod >= 16) {
      pacer.configure([camp]);
      present = true;
    }
    if (market() > SHAPE[Math.floor(hod)]) continue;
    pacer.onRequest(now);
    const v = 2 * Math.exp(0.5 * sampleNormal(market));
    const price = 1.5 * Math.exp(0.6 * sampleNormal(market));
    if (!present) continue;
    const bid = v * pacer.multiplier('c', now, { valueCpmUsd: v, firstPrice: false });
    if (!(bid > 0) || spent + bid / 1000 > BUDGET) continue;
    if (bid >= price) {
      spent += price / 1000;
      if (hod >= 22) lateSpend += price / 1000;
      pacer.onWin('c', 'cr', price, now, undefined, price);
    } else pacer.onLoss('c', 'cr', bid, price, now);
  }
  return { spent, lateSpend, learnt: pacer.snapshot().traffic?.[6] };
}

describe('value pacer: a campaign first paced mid-day plans on the traffic the process learnt', () => {
  it('added at 16:00 on the second day, it spends its budget over the evening', () => {
    const r = run();
    // The learnt requests per hour carry the market's shape: night hours a fifth of the day's.
    const learnt = r.learnt!;
    const day = learnt.slice(7, 19).reduce((a, b) => a + b, 0) / 12;
    const night = learnt.slice(0, 6).reduce((a, b) => a + b, 0) / 6;
    expect(night / day).toBeGreaterThan(0.15);
    expect(night / day).toBeLessThan(0.25);
    // Before: 79 % spent, the evening's bids too shy for the evening it expected.
    expect(r.spent).toBeGreaterThan(0.97 * BUDGET);
    expect(r.spent).toBeLessThanOrEqual(BUDGET);
    // Spread to the end of the day, not spent by early evening.
    expect(r.lateSpend).toBeGreaterThan(0.03 * BUDGET);
  });

  it('the learnt traffic is kept across a restart (learned.json) at 13:00', () => {
    const r = run(13);
    expect(r.spent).toBeGreaterThan(0.97 * BUDGET);
  });
});

/**
 * Day 1: the process is up all day, but its exchange sends requests only from 09:00. Day 2: an even
 * market all day, campaign c added at 03:00. Learnt as requests, 00-08 read as empty hours: the
 * first-day forecast divided by the share of the day seen there (0), planned on 10^3-10^5 times the
 * traffic, bought nothing until 09:00 and crowded its spend into the evening (0.837 of the value
 * hindsight buys; the even shape: 0.997).
 */
function lateExchange() {
  let now = DAY0;
  const clock = () => now;
  const pacer = createValuePacer({ clock, random: mulberry32(7), campaigns: [] });
  const market = mulberry32(1234);
  let present = false;
  let spent = 0;
  let value = 0;
  let earlySpend = 0;
  const bids: [number, number][] = [];
  for (now = DAY0; now < DAY0 + 2 * DAY; now += GAP) {
    const hod = ((now - DAY0) % DAY) / HOUR;
    const day2 = now >= DAY0 + DAY;
    if (!day2 && hod < 9) continue;
    if (day2 && !present && hod >= 3) {
      pacer.configure([{ id: 'c', budget: { dailyUsd: BUDGET } }]);
      present = true;
    }
    pacer.onRequest(now);
    const v = 2 * Math.exp(0.5 * sampleNormal(market));
    const price = 1.5 * Math.exp(0.6 * sampleNormal(market));
    if (!present) continue;
    bids.push([v, price]);
    const bid = v * pacer.multiplier('c', now, { valueCpmUsd: v, firstPrice: false });
    if (!(bid > 0) || spent + bid / 1000 > BUDGET) continue;
    if (bid >= price) {
      spent += price / 1000;
      value += v / 1000;
      if (hod < 9) earlySpend += price / 1000;
      pacer.onWin('c', 'cr', price, now, undefined, price);
    } else pacer.onLoss('c', 'cr', bid, price, now);
  }
  // Hindsight: the best value the budget buys at those prices.
  bids.sort((a, b) => b[0] / b[1] - a[0] / a[1]);
  let hs = 0;
  let hv = 0;
  for (const [v, p] of bids) {
    if (hs + p / 1000 > BUDGET) break;
    hs += p / 1000;
    hv += v / 1000;
  }
  return { spent, earlySpend, ofHindsight: value / hv, learnt: pacer.snapshot().traffic?.[6] };
}

describe('value pacer: an hour the process was up without one request is not learnt as empty', () => {
  it('requests only from 09:00 on day 1: a campaign added at 03:00 on day 2 buys from 03:00', () => {
    const r = lateExchange();
    expect(r.learnt!.slice(0, 9).every((n) => n > 0)).toBe(true);
    // 6 of its 21 hours are before 09:00.
    expect(r.earlySpend).toBeGreaterThan(0.2 * BUDGET);
    expect(r.ofHindsight).toBeGreaterThan(0.98);
  });
});

describe('value pacer: a clock stepped back after the start', () => {
  const T0 = Date.UTC(2026, 5, 10, 12);
  for (const withCampaign of [false, true]) {
    it(`a snapshot written 1 s before the start restores (${withCampaign ? 'a campaign\'s count' : 'the requests'})`, () => {
      let now = T0;
      const clock = () => now;
      const campaigns = withCampaign ? [{ id: 'c', budget: { dailyUsd: 1 } }] : [];
      const p = createValuePacer({ clock, random: mulberry32(1), campaigns });
      now = T0 - 1000;
      if (withCampaign) p.multiplier('c', now, { valueCpmUsd: 1, firstPrice: false });
      p.onRequest(now);
      const snap = JSON.parse(JSON.stringify(p.snapshot()));
      expect(snap.traffic).toBeDefined();
      if (withCampaign) expect(snap.today).toHaveLength(1);
      const q = createValuePacer({ clock, random: mulberry32(1), campaigns });
      expect(() => q.restore(snap)).not.toThrow();
      expect(q.snapshot().traffic?.[3].reduce((a: number, b: number) => a + b, 0)).toBe(1);
    });
  }

  it('a campaign paused and the clock then stepped back: its snapshot restores, no hour out less than not at all', () => {
    let now = T0;
    const clock = () => now;
    const campaigns = [{ id: 'c', budget: { dailyUsd: 1 } }];
    const p = createValuePacer({ clock, random: mulberry32(1), campaigns });
    p.multiplier('c', now, { valueCpmUsd: 1, firstPrice: false });
    now += 60_000;
    p.setServing('c', false, now);
    now -= 120_000;
    const snap = JSON.parse(JSON.stringify(p.snapshot()));
    expect(snap.today[0][5].every((x: number) => x >= 0)).toBe(true);
    const q = createValuePacer({ clock, random: mulberry32(1), campaigns });
    expect(() => q.restore(snap)).not.toThrow();
    // Back in service before the pause's start by this clock: nothing counted out, nothing taken off.
    p.setServing('c', true, now);
    expect(JSON.parse(JSON.stringify(p.snapshot())).today[0][5].every((x: number) => x >= 0)).toBe(true);
  });
});
