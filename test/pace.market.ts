import { createMemoryLedger } from '../src/ledger/index.js';
import { createThompsonPacer, type ThompsonPacerOptions } from '../src/pace/pacer.js';
import { mulberry32, sampleNormal } from '../src/random/random.js';

/**
 * A small synthetic market for pacing tests: one opportunity every `gapMs` (thinned by an hourly
 * traffic shape), a value and a highest competing bid per opportunity (log-normal), second price,
 * every bid reserved in the in-process ledger first, wins settled and losses released at once.
 * With `bidders` > 1, opportunities are dealt round-robin to that many pacers, each pacing
 * 1/bidders of the budget and syncing the shared ledger's spend every `syncEveryMs`.
 */
export interface MarketRun {
  budgetUsd: number;
  spentUsd: number;
  /** Largest |cumulative spend - target curve| over the day, as a fraction of the budget. */
  maxErrFrac: number;
  maxLedgerSpentUsd: number;
  multipliers: number[];
}

export async function runMarketDay(opts: {
  seed: number;
  budgetUsd: number;
  gapMs?: number;
  traffic?: readonly number[];
  pacer?: Partial<ThompsonPacerOptions>;
  days?: number;
  bidders?: number;
  syncEveryMs?: number;
}): Promise<MarketRun> {
  const day0 = Date.UTC(2026, 0, 10);
  const gapMs = opts.gapMs ?? 1000;
  const days = opts.days ?? 1;
  const market = mulberry32(opts.seed ^ 0x5eed);
  let now = day0;
  const budgets = { c1: { dailyUsd: opts.budgetUsd } };
  const ledger = await createMemoryLedger({ clock: () => now, budgets, reservationTtlMs: 60_000 });
  const bidders = opts.bidders ?? 1;
  const pacers = Array.from({ length: bidders }, (_, i) =>
    createThompsonPacer({
      clock: () => now,
      random: mulberry32(opts.seed + 1000 * i),
      campaigns: [{ id: 'c1', budget: budgets.c1 }],
      share: 1 / bidders,
      ...opts.pacer,
    }),
  );
  let nextSync = day0;
  let opportunity = 0;
  const traffic = opts.traffic ?? new Array<number>(24).fill(1);
  const peak = Math.max(...traffic);
  let maxErrFrac = 0;
  let maxLedgerSpentUsd = 0;
  let spentUsd = 0;
  const multipliers: number[] = [];
  let nextCheck = day0;
  let bidSeq = 0;
  const end = day0 + days * 86_400_000;
  for (; now < end; now += gapMs) {
    const hour = Math.floor((now % 86_400_000) / 3_600_000);
    if (market() * peak > traffic[hour]) continue;
    const value = 2 * Math.exp(0.5 * sampleNormal(market));
    const competing = 1.5 * Math.exp(0.6 * sampleNormal(market));
    if (bidders > 1 && now >= nextSync) {
      const fleetSpent = (await ledger.state('c1')).spentUsd;
      for (const p of pacers) p.syncSpend('c1', fleetSpent, now);
      nextSync += opts.syncEveryMs ?? 10_000;
    }
    const pacer = pacers[opportunity++ % bidders];
    const m = pacer.multiplier('c1', now);
    if (now >= nextCheck) {
      const view = pacer.inspect('c1', now)!;
      const spentToday = (await ledger.state('c1')).spentUsd;
      if (now >= end - 86_400_000) {
        maxErrFrac = Math.max(maxErrFrac, Math.abs(spentToday - view.targetSpentUsd) / opts.budgetUsd);
      }
      multipliers.push(m);
      nextCheck += 600_000;
    }
    if (m <= 0) continue;
    const bid = value * m;
    const bidId = `b${bidSeq++}`;
    const [ok] = await ledger.reserve([{ bidId, campaignId: 'c1', amountUsd: bid / 1000, expiresAtMs: now + 60_000 }]);
    if (!ok) continue;
    pacer.onBid('c1', 'cr1', bid, now);
    if (bid >= competing) {
      await ledger.settle(bidId, competing / 1000);
      pacer.onWin('c1', 'cr1', competing, now);
      if (now >= end - 86_400_000) spentUsd += competing / 1000;
    } else {
      await ledger.release(bidId);
      pacer.onLoss('c1', 'cr1', bid, competing, now);
    }
    maxLedgerSpentUsd = Math.max(maxLedgerSpentUsd, (await ledger.state('c1')).spentUsd);
  }
  await ledger.close();
  return { budgetUsd: opts.budgetUsd, spentUsd, maxErrFrac, maxLedgerSpentUsd, multipliers };
}

/**
 * A day of a dayparted market for one value pacer's campaign 'c': one opportunity every 6 s in
 * `hours` (UTC), value 2–6 CPM, a highest competing bid around 2, second price; `onTick` is told
 * each opportunity's time first (a test clock). Returns the spend per UTC hour, USD.
 */
export function daypartedDay(
  pacer: { multiplier(id: string, now: number, o: { valueCpmUsd: number; firstPrice: boolean }): number; onWin(c: string, cr: string, price: number, now: number, pctr?: number): void; onLoss(c: string, cr: string, bid: number, mtw: number | undefined, now: number): void },
  from: number,
  hours: readonly number[],
  rnd: () => number,
  onTick?: (t: number) => void,
): number[] {
  const DAY_MS = 86_400_000;
  const byHour = new Array<number>(24).fill(0);
  for (let t = from; t < from + DAY_MS; t += 6000) {
    const h = Math.floor((t % DAY_MS) / 3_600_000);
    if (!hours.includes(h)) continue;
    onTick?.(t);
    const v = 2 + 4 * rnd();
    const bid = v * pacer.multiplier('c', t, { valueCpmUsd: v, firstPrice: false });
    const price = Math.exp(Math.log(2) + 0.85 * (rnd() * 2 - 1));
    if (bid > price) {
      pacer.onWin('c', 'cr', price, t, 0.01);
      byHour[h] += price / 1000;
    } else if (bid > 0) pacer.onLoss('c', 'cr', bid, undefined, t);
  }
  return byHour;
}
