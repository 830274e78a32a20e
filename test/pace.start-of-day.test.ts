import { describe, expect, it } from 'vitest';
import { createValuePacer } from '../src/pace/value-pacer.js';
import { createRng, mulberry32 } from '../src/random/random.js';
import type { Episode } from '../src/replay/ipinyou.js';
import { replayReport } from '../src/replay/replay.js';

const T = 1000;

function normal(next: () => number): number {
  let u = 0;
  while (u === 0) u = next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
}

/**
 * Episodes of a campaign whose market prices rise with the pCTR (log-correlation `rho`), as the
 * iPinYou logs' and more so: the auctions the pacer bids high on are dearer than the one price
 * distribution of every auction says, and its losses (censored) are completed from that one.
 */
function episodes(seed: number, count: number, rho: number): Episode[] {
  const next = createRng(seed).next;
  const out: Episode[] = [];
  for (let e = 0; e < count; e++) {
    const click = new Uint8Array(T);
    const price = new Float64Array(T);
    const pctr = new Float64Array(T);
    for (let i = 0; i < T; i++) {
      const z = normal(next);
      pctr[i] = 0.001 * Math.exp(z - 0.5);
      price[i] = Math.max(0, Math.min(300, Math.round(60 * Math.exp(0.7 * (rho * z + Math.sqrt(1 - rho * rho) * normal(next))))));
    }
    out.push({ click, price, pctr });
  }
  return out;
}

/** The pacer's spend per tenth of the episode, as a share of its spend, over the episodes from the 20th. */
async function spendByTenth(rho: number, c0: number): Promise<number[]> {
  const train = episodes(8, 20, rho);
  let sum = 0;
  let n = 0;
  const priceCounts = new Array<number>(301).fill(0);
  for (const e of train) for (const p of e.price) ((sum += p), n++, priceCounts[p]++);
  const info = { cpm: (sum / n) * 1000, avgCtr: 0.001, priceCounts };
  const eps = episodes(7, 60, rho);
  const tenths = new Array<number>(10).fill(0);
  let prev = 0;
  await replayReport(
    { episodes: eps },
    {
      budgetPerEpisode: (c0 * (info.cpm / 1000) * T) / 1000,
      info,
      seed: 1,
      onStep: (k, i, _lambda, spent) => {
        if (i === 0) prev = 0;
        if (k >= 20) tenths[Math.floor(i / 100)] += spent - prev;
        prev = spent;
      },
    },
  );
  const total = tenths.reduce((a, b) => a + b, 0);
  return tenths.map((x) => x / total);
}

describe('value pacer: the start of a day at a tight budget', () => {
  it('spends evenly through the day where prices rise with the value (before: 37.3 % of the spend in the first three tenths, 6.7 % in the last; after 31.8 %, 9.0 %)', async () => {
    const share = await spendByTenth(0.6, 1 / 32);
    expect(share[0] + share[1] + share[2]).toBeLessThan(0.34);
    expect(share[9]).toBeGreaterThan(0.08);
  }, 60_000);

  it('keeps what the days before delivered against the plan across a restart, and refuses a malformed record', () => {
    let now = Date.UTC(2026, 0, 10);
    const campaigns = [{ id: 'a', budget: { dailyUsd: 0.05 } }];
    const before = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns, slotMs: 60_000 });
    const market = mulberry32(2);
    // Three days where every bid at or above 1 CPM wins at 1.
    for (let i = 0; i < 3 * 2880; i++) {
      now = Date.UTC(2026, 0, 10) + i * 30_000;
      const v = 2 * Math.exp(0.5 * (market() - 0.5));
      const m = before.multiplier('a', now, { valueCpmUsd: v, firstPrice: false });
      if (v * m >= 1) before.onWin('a', 'cr', 1, now);
    }
    const snap = before.snapshot();
    const [id, day, plannedToday, wonToday, plannedBefore, wonBefore] = snap.learntDelivery![0];
    expect([id, day]).toEqual(['a', 20463 + 2]);
    expect(plannedToday).toBeGreaterThan(0);
    expect(wonToday).toBeGreaterThan(0);
    expect(plannedBefore).toBeGreaterThan(0);
    expect(wonBefore).toBeGreaterThan(0);
    const after = createValuePacer({ clock: () => now, random: mulberry32(3), campaigns, slotMs: 60_000 });
    after.restore(JSON.parse(JSON.stringify(snap)));
    expect(after.snapshot().learntDelivery).toEqual(snap.learntDelivery);
    // Restored on the next day, that day joins the days before: 0.8 of theirs plus its own.
    now += 86_400_000;
    const next = createValuePacer({ clock: () => now, random: mulberry32(3), campaigns, slotMs: 60_000 });
    next.restore(JSON.parse(JSON.stringify(snap)));
    const [, day2, p2, w2, pb2, wb2] = next.snapshot().learntDelivery![0];
    expect([day2, p2, w2]).toEqual([day + 1, 0, 0]);
    expect(pb2).toBeCloseTo(0.8 * plannedBefore + plannedToday, 12);
    expect(wb2).toBeCloseTo(0.8 * wonBefore + wonToday, 12);
    // Another process's file, written at share 1, seeding a worker at share 1/2: its spend at half the weight.
    const worker = createValuePacer({ clock: () => now, random: mulberry32(4), campaigns, slotMs: 60_000, share: 0.5 });
    worker.restore(JSON.parse(JSON.stringify(snap)));
    const [, , , , pb3, wb3] = worker.snapshot().learntDelivery![0];
    expect(pb3).toBeCloseTo(0.5 * (0.8 * plannedBefore + plannedToday), 12);
    expect(wb3).toBeCloseTo(0.5 * (0.8 * wonBefore + wonToday), 12);
    expect(() => after.restore({ ...snap, learntDelivery: [['a', day, -1, 0, 0, 0]] })).toThrow('not a value pacer snapshot');
  });
});
