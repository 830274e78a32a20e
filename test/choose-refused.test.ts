import { describe, expect, it } from 'vitest';
import { chooseBids, LedgerRefusals, REFUSAL_MEMORY_MS, type ChooseDeps, type Chosen, type Priceable, type PriceableImp } from '../src/price/choose.js';
import { createPricer } from '../src/price/price.js';
import type { Campaign, Creative, ImpContext } from '../src/types.js';

/**
 * Review 2026-12-06 (money/integrity): the chooser picked one campaign per imp without knowing its
 * room in the ledger. An asap campaign whose budget had less than one bid left (0.007 USD, 10 CPM)
 * kept winning the choice and being refused by the ledger, and its sibling eligible on the same imps
 * got nothing for the rest of the day. A campaign the ledger refused is now passed over, for bids
 * of at least the refused amount, for REFUSAL_MEMORY_MS.
 */

const ctx = { exchange: 'x', format: 'banner', isApp: false, siteOrAppId: 's-money', hour: 3, deviceType: 2, w: 300, h: 250 } as unknown as ImpContext;
const camp = (id: string, valueUsd: number, capLeft?: number) => ({ campaign: { id, goal: { type: 'cpm', valueUsd }, maxBidCpmUsd: valueUsd } as unknown as Campaign, capLeft });
const alpha = camp('alpha', 10);
const bravo = camp('bravo', 5);
const T0 = Date.parse('2026-12-06T12:00:00Z');

function plan(n: number, entries: Array<{ campaign: Campaign; capLeft?: number }>, imp: Record<string, unknown> = {}): PriceableImp<Priceable>[] {
  return Array.from({ length: n }, (_, k) => ({
    imp: { id: String(k + 1), ...imp },
    ctx,
    eligible: entries.map((e, idx) => ({ cand: { idx, campaign: e.campaign, creative: { id: `${e.campaign.id}-cr` } as Creative }, floorUsd: 0.5, capLeft: e.capLeft })),
  }));
}

function choose(imps: PriceableImp<Priceable>[], refusals: LedgerRefusals | undefined, nowMs = T0, opts: { at?: number; test?: boolean; held?: Chosen<Priceable>[] } = {}) {
  const asked: string[] = [];
  const peeked: string[] = [];
  const pacer: ChooseDeps['pacer'] = {
    multiplier: (id: string) => (asked.push(id), 1),
    peekMultiplier: (id: string) => (peeked.push(id), 1),
    calibratePctr: (_c: string, p: number) => p,
    calibratePcvr: (_c: string, p: number) => p,
  };
  const rows = imps.reduce((s, p) => s + p.eligible.length, 0);
  const out = chooseBids(imps, new Float32Array(rows).fill(0.01), nowMs, opts.at ?? 2, opts.test ?? false, { pacer, price: createPricer(null), shortlist: { learn: () => {} }, internSegment: (s) => s, refusals }, opts.held);
  return { bids: out.chosen.map((c) => `${c.impid}:${c.el.cand.campaign.id}@${c.bidUsd}`), chosen: out.chosen, asked, peeked, reason: out.reason };
}

describe('a campaign the ledger refused is passed over while its bid cannot fit', () => {
  it('the sibling bids the imps once alpha was refused at 10 CPM; the pacer still counts both once per imp', () => {
    expect(choose(plan(3, [alpha, bravo]), new LedgerRefusals()).bids).toEqual(['1:alpha@10', '2:alpha@10', '3:alpha@10']);
    const refusals = new LedgerRefusals();
    refusals.refused('alpha', 10, T0);
    const out = choose(plan(3, [alpha, bravo]), refusals, T0 + 10);
    expect(out.bids).toEqual(['1:bravo@5', '2:bravo@5', '3:bravo@5']);
    expect(out.asked).toEqual(['alpha', 'bravo', 'alpha', 'bravo', 'alpha', 'bravo']);
  });

  it('a bid under the refused amount is still chosen (the ledger may have room for it)', () => {
    const refusals = new LedgerRefusals();
    refusals.refused('alpha', 12, T0);
    expect(choose(plan(1, [alpha, bravo]), refusals, T0 + 10).bids).toEqual(['1:alpha@10']);
    // The smallest refusal stands while remembered.
    refusals.refused('alpha', 10, T0 + 20);
    refusals.refused('alpha', 11, T0 + 30);
    expect(choose(plan(1, [alpha, bravo]), refusals, T0 + 40).bids).toEqual(['1:bravo@5']);
  });

  it('is forgotten after REFUSAL_MEMORY_MS, and at the UTC day turn', () => {
    const refusals = new LedgerRefusals();
    refusals.refused('alpha', 10, T0);
    expect(choose(plan(1, [alpha, bravo]), refusals, T0 + REFUSAL_MEMORY_MS - 1).bids).toEqual(['1:bravo@5']);
    expect(choose(plan(1, [alpha, bravo]), refusals, T0 + REFUSAL_MEMORY_MS).bids).toEqual(['1:alpha@10']);
    const late = Date.parse('2026-12-06T23:59:59.900Z');
    refusals.refused('alpha', 10, late);
    expect(choose(plan(1, [alpha, bravo]), refusals, late + 50).bids).toEqual(['1:bravo@5']);
    expect(choose(plan(1, [alpha, bravo]), refusals, late + 100).bids).toEqual(['1:alpha@10']);
  });

  it('with nothing else to bid, the no-bid says BUDGET_EXHAUSTED, as the ledger would have', () => {
    const refusals = new LedgerRefusals();
    refusals.refused('alpha', 10, T0);
    const out = choose(plan(1, [alpha]), refusals, T0 + 1);
    expect(out.bids).toEqual([]);
    expect(out.reason).toBe('BUDGET_EXHAUSTED');
  });

  it('in first price, a refused top does not stand for the bids under it (they are priced)', () => {
    const refusals = new LedgerRefusals();
    refusals.refused('alpha', 10, T0);
    expect(choose(plan(1, [alpha, bravo]), refusals, T0 + 1, { at: 1 }).bids).toEqual(['1:bravo@5']);
  });

  it("a second pass over refused imps keeps the request's held bids' frequency caps and pods, and counts no opportunity", () => {
    const capped = camp('capped', 12, 1);
    const first = choose(plan(2, [capped, alpha, bravo]), new LedgerRefusals());
    expect(first.bids).toEqual(['1:capped@12', '2:alpha@10']);
    // Imp 2's alpha was refused: the second pass, on imp 2 alone, must not give capped a second impression.
    const refusals = new LedgerRefusals();
    refusals.refused('alpha', 10, T0);
    const imps = plan(2, [capped, alpha, bravo]);
    imps[0] = { ...imps[0], eligible: [] };
    const again = choose(imps, refusals, T0, { test: true, held: [first.chosen[0]] });
    expect(again.bids).toEqual(['2:bravo@5']);
    expect(again.asked).toEqual([]);
    // The same in a pod: one ad per advertiser in the break.
    const podded = (n: number) => plan(n, [alpha, bravo], { video: { podid: 'p1' } });
    const inPod = choose(podded(2), new LedgerRefusals());
    expect(inPod.bids).toEqual(['1:alpha@10', '2:bravo@5']);
    const refusedBravo = new LedgerRefusals();
    refusedBravo.refused('bravo', 5, T0);
    const podImps = podded(2);
    podImps[0] = { ...podImps[0], eligible: [] };
    expect(choose(podImps, refusedBravo, T0, { test: true, held: [inPod.chosen[0]] }).bids).toEqual([]);
  });
});
