import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createShader } from '../src/pace/shade.js';
import { answerPrices, chooseBids, segmentOf, type ChooseDeps, type Chosen, type Priceable, type PriceableImp } from '../src/price/choose.js';
import { createPricer, DEFAULT_PCVR, valueCpmUsd } from '../src/price/price.js';
import type { Campaign, ImpContext, Shader } from '../src/types.js';

/**
 * The bid path's choice per imp (src/price/choose.ts) prices to the end only the candidates that
 * can still win. It must choose what pricing every candidate chooses: the highest price (in second
 * price the first of equal ones), and the same reason when nothing is chosen.
 */

interface Case {
  goal: Campaign['goal'];
  maxBidCpmUsd: number;
  pctr: number;
  multiplier: number;
  floorUsd: number;
  /** A deal's own auction type (0: the request's). */
  dealAt?: number;
}

const goal = fc.oneof(
  fc.record({ type: fc.constant('cpc' as const), valueUsd: fc.double({ min: 0.01, max: 5, noNaN: true }) }),
  fc.record({ type: fc.constant('cpm' as const), valueUsd: fc.constantFrom(1, 2, 4) }),
  fc.record({ type: fc.constant('cpa' as const), valueUsd: fc.double({ min: 0.1, max: 50, noNaN: true }) }),
);
const oneCase = fc.record({
  goal,
  // Caps that bind often, so that equal prices (ties) happen.
  maxBidCpmUsd: fc.constantFrom(0.5, 2, 5, 100),
  pctr: fc.double({ min: 0, max: 0.2, noNaN: true }),
  multiplier: fc.oneof(fc.constant(0), fc.double({ min: 0.05, max: 4, noNaN: true })),
  floorUsd: fc.constantFrom(0, 0.01, 0.5, 1, 2),
  // Mostly the request's auction type; else a deal's own: first price, second, or its floor as the agreed price.
  dealAt: fc.constantFrom(0, 0, 0, 0, 0, 1, 2, 3),
});

const ctx = { exchange: 'x', format: 'banner', isApp: false, siteOrAppId: 's', hour: 3, deviceType: 2, w: 300, h: 250 } as unknown as ImpContext;

function plan(imps: Case[][]): PriceableImp<Priceable>[] {
  let idx = 0;
  return imps.map((cases, k) => ({
    imp: { id: String(k + 1) },
    ctx,
    eligible: cases.map((c) => {
      const i = idx++;
      return { cand: { idx: i, campaign: { id: `c${i}`, goal: c.goal, maxBidCpmUsd: c.maxBidCpmUsd } as Campaign, creative: { id: `cr${i}` } as never }, floorUsd: c.floorUsd, auctionType: c.dealAt ?? 0 };
    }),
  }));
}

/** A pacer that returns each case's multiplier and calibrates nothing; it records the opportunities it is asked about, and those only peeked at. */
function pacer(cases: Case[]): ChooseDeps['pacer'] & { asked: string[]; peeked: string[] } {
  const byId = new Map(cases.map((c, i) => [`c${i}`, c.multiplier]));
  const asked: string[] = [];
  const peeked: string[] = [];
  return {
    asked,
    peeked,
    multiplier: (id: string) => (asked.push(id), byId.get(id)!),
    peekMultiplier: (id: string) => (peeked.push(id), byId.get(id)!),
    calibratePctr: (_c: string, p: number) => p,
    calibratePcvr: (_c: string, p: number) => p,
  };
}

/** Pricing every candidate in order, the first highest price kept (the rule before the lazy pricing). */
function exhaustive(imps: Case[][], price: ReturnType<typeof createPricer>, auctionType: number) {
  const out: Array<{ impid: string; i: number; bid: number }> = [];
  let belowFloor = false;
  let paced = false;
  imps.forEach((cases, k) => {
    let best = -1;
    let bestBid = 0;
    let bestRank = 0;
    cases.forEach((c, i) => {
      if (c.multiplier <= 0) return void (paced = true);
      const campaign = { goal: c.goal, maxBidCpmUsd: c.maxBidCpmUsd } as Campaign;
      const bid = price({ campaign, pctr: c.pctr, pcvr: DEFAULT_PCVR, multiplier: c.multiplier, floorUsd: c.floorUsd, auctionType: c.dealAt || auctionType, segment: segmentOf(ctx) });
      if (bid <= 0) return void (belowFloor = true);
      // A fixed price (deal `at` 3) ranks at what its campaign would bid in the request's auction,
      // at least the agreed price: its paced value, capped, shaded in first price.
      const ceiling = Math.min(price.pacedValue({ campaign, pctr: c.pctr, pcvr: DEFAULT_PCVR, multiplier: c.multiplier }), c.maxBidCpmUsd);
      const open = auctionType === 1 ? price.settle(ceiling, { floorUsd: c.floorUsd, auctionType: 1, segment: segmentOf(ctx) }, price.pacedValue({ campaign, pctr: c.pctr, pcvr: DEFAULT_PCVR, multiplier: c.multiplier })) : ceiling;
      const rank = (c.dealAt || auctionType) === 3 ? open : bid;
      if (best < 0 || rank > bestRank) ((best = i), (bestBid = bid), (bestRank = rank));
    });
    if (best >= 0) out.push({ impid: String(k + 1), i: best, bid: bestBid });
  });
  return { out, reason: out.length > 0 ? '' : paced ? 'PACING' : belowFloor ? 'BELOW_FLOOR' : 'NO_ELIGIBLE_CAMPAIGN' };
}

/** A trained shader: competition around 1 USD CPM on the test's segment. */
function trainedShader(): Shader {
  const s = createShader();
  for (let i = 0; i < 500; i++) s.observe(segmentOf(ctx), 0.5 + (i % 9) * 0.25, i % 3 !== 0, i % 2 ? 0.6 + (i % 7) * 0.15 : undefined);
  return s;
}

describe('choosing the bid of an imp', () => {
  it('chooses what pricing every candidate chooses, with the same reason, shading only those that can win', () => {
    const shader = trainedShader();
    let shaded = 0;
    const counting: Shader = { shade: (seg, v, f) => (shaded++, shader.shade(seg, v, f)), observe: () => {} };
    const price = createPricer(counting);
    const reference = createPricer(shader);
    let candidates = 0;
    fc.assert(
      fc.property(fc.array(fc.array(oneCase, { minLength: 0, maxLength: 40 }), { minLength: 1, maxLength: 3 }), fc.constantFrom(1, 2), (imps, at) => {
        const all = imps.flat();
        const pctrs = Float32Array.from(all, (c) => c.pctr);
        // The model's pCTR as the bid path has it (float32), in both.
        imps.forEach((cases) => cases.forEach((c) => (c.pctr = Math.fround(c.pctr))));
        const want = exhaustive(imps, reference, at);
        const p = pacer(all);
        const learnt: number[] = [];
        const got = chooseBids(plan(imps), pctrs, 0, at, false, { pacer: p, price, shortlist: { learn: (idx) => learnt.push(idx) }, internSegment: (s) => s });
        expect(got.reason).toBe(want.reason);
        const picked = got.chosen.map((c) => ({ impid: c.impid, i: c.el.cand.idx - imps.slice(0, Number(c.impid) - 1).flat().length, bid: c.bidUsd }));
        const firstPrice = (c: Case) => (c.dealAt || at) === 1;
        if (!all.some(firstPrice)) expect(picked).toEqual(want.out);
        else {
          // First price: the same imps answered at the highest price, up to the shading search's
          // tolerance (a near-tie may go to the higher value), each bid the one its candidate prices to.
          expect(picked.map((c) => c.impid)).toEqual(want.out.map((c) => c.impid));
          picked.forEach((c, j) => expect(c.bid).toBeGreaterThanOrEqual(want.out[j].bid * (1 - 1e-3)));
        }
        for (const c of got.chosen) {
          const k = c.el.cand.idx;
          expect(c.multiplier).toBe(all[k].multiplier);
          expect(c.bidUsd).toBe(exhaustive([[all[k]]], reference, at).out[0].bid);
        }
        // Every candidate is paced and learnt, in plan order, whatever is priced.
        expect(p.asked).toEqual(all.map((_, i) => `c${i}`));
        expect(learnt).toEqual(all.map((_, i) => i));
        candidates += all.filter((c) => c.multiplier > 0 && firstPrice(c)).length;
        // Each chosen bid carries the auction type it was priced for; a fixed price is its floor and no segment.
        for (const c of got.chosen) {
          const k = all[c.el.cand.idx];
          expect(c.auctionType).toBe(k.dealAt || at);
          if (c.auctionType === 3) expect([c.bidUsd, c.segment]).toEqual([k.floorUsd, '']);
        }
      }),
      { numRuns: 300, seed: 7 },
    );
    // Shading only what can win: far fewer searches than candidates, even with a floor drawn per
    // candidate (deal floors); with one floor for the imp, one search (below).
    expect(shaded).toBeLessThan(0.3 * candidates);
  });

  it('prices a test request as a real one, reading the pacer only: no opportunity counted, nothing learnt', () => {
    const cases: Case[] = [0.01, 0.03, 0.02].map((pctr, i) => ({ goal: { type: 'cpc', valueUsd: 2 }, maxBidCpmUsd: 100, pctr, multiplier: 0.5 + i / 4, floorUsd: 0.01 }));
    const pctrs = Float32Array.from(cases, (c) => c.pctr);
    const choose = (test: boolean) => {
      const p = pacer(cases);
      const learnt: number[] = [];
      const got = chooseBids(plan([cases]), pctrs, 0, 2, test, { pacer: p, price: createPricer(null), shortlist: { learn: (idx) => learnt.push(idx) }, internSegment: (s) => s });
      return { got, p, learnt };
    };
    const real = choose(false);
    const test = choose(true);
    expect(test.got).toEqual(real.got);
    expect(real.p.asked).toEqual(['c0', 'c1', 'c2']);
    expect(test.p.asked).toEqual([]);
    expect(test.p.peeked).toEqual(['c0', 'c1', 'c2']);
    expect(test.learnt).toEqual([]);
  });

  it('shades once per first-price imp whose candidates share its floor', () => {
    const shader = trainedShader();
    let shaded = 0;
    const price = createPricer({ shade: (seg, v, f) => (shaded++, shader.shade(seg, v, f)), observe: () => {} });
    const cases: Case[] = Array.from({ length: 16 }, (_, i) => ({ goal: { type: 'cpc', valueUsd: 1 }, maxBidCpmUsd: 100, pctr: 0.001 * (1 + ((i * 7) % 16)), multiplier: 1, floorUsd: 0.1 }));
    const got = chooseBids(plan([cases]), Float32Array.from(cases, (c) => c.pctr), 0, 1, false, { pacer: pacer(cases), price, shortlist: { learn: () => {} }, internSegment: (s) => s });
    expect(shaded).toBe(1);
    // The highest value, shaded.
    expect(got.chosen[0].el.cand.idx).toBe(cases.findIndex((c) => c.pctr === Math.max(...cases.map((x) => x.pctr))));
    expect(got.chosen[0].bidUsd).toBeLessThan(16);
    // A deal whose floor is above that shaded bid still bids its floor, and wins: a higher floor is priced.
    const deal: Case = { goal: { type: 'cpm', valueUsd: 8 }, maxBidCpmUsd: 100, pctr: 0.001, multiplier: 1, floorUsd: 6 };
    const withDeal = [...cases, deal];
    const won = chooseBids(plan([withDeal]), Float32Array.from(withDeal, (c) => c.pctr), 0, 1, false, { pacer: pacer(withDeal), price, shortlist: { learn: () => {} }, internSegment: (s) => s });
    expect(won.chosen[0].el.cand.idx).toBe(16);
    expect(won.chosen[0].bidUsd).toBeGreaterThanOrEqual(6);
  });

  it('gives equal prices to the first candidate in second price, to the higher value in first price', () => {
    // Three candidates capped at the same maximum bid: the first wins, whichever is priced first.
    const cases: Case[] = [0.05, 0.2, 0.2].map((pctr) => ({ goal: { type: 'cpc', valueUsd: 2 }, maxBidCpmUsd: 2, pctr, multiplier: 1, floorUsd: 0 }));
    cases[0].maxBidCpmUsd = 1;
    const price = createPricer(null);
    const got = chooseBids(plan([cases]), Float32Array.from(cases, (c) => c.pctr), 0, 2, false, { pacer: pacer(cases), price, shortlist: { learn: () => {} }, internSegment: (s) => s });
    expect(valueCpmUsd({ goal: cases[1].goal } as Campaign, 0.2, DEFAULT_PCVR)).toBeGreaterThan(2);
    expect(got.chosen[0].el.cand.idx).toBe(1);
    expect(got.chosen[0].bidUsd).toBe(2);
    // First price, a shader that bids 80 % of the value but never under the floor: worth 2.2 and
    // 2.4 USD CPM, both bid the floor of 2. The higher value wins (the only one priced).
    const shader: Shader = { shade: (_s, v, floor) => (v <= floor ? v : Math.max(floor, v * 0.8)), observe: () => {} };
    const fp: Case[] = [2.2, 2.4].map((v) => ({ goal: { type: 'cpm', valueUsd: v }, maxBidCpmUsd: 100, pctr: 0.01, multiplier: 1, floorUsd: 2 }));
    const first = chooseBids(plan([fp]), Float32Array.from(fp, (c) => c.pctr), 0, 1, false, { pacer: pacer(fp), price: createPricer(shader), shortlist: { learn: () => {} }, internSegment: (s) => s });
    expect(first.chosen[0].el.cand.idx).toBe(1);
    expect(first.chosen[0].bidUsd).toBe(2);
  });

  it('answers a fixed-price deal at its price written up to the decimals, not a hair under it, nor dropped', () => {
    const chosen = (floorUsd: number, auctionType: number, ceilingUsd = 100) => ({ impid: '1', el: { cand: {} as never, floorUsd }, pctr: 0.01, bidUsd: floorUsd, multiplier: 1, ctxIndex: 0, segment: '', auctionType, ceilingUsd }) as Chosen;
    let id = 0;
    const next = () => String(++id);
    // 1.255 USD at 2 decimals: 1.26 (a first-price bid of the same amount, capped by itself, is dropped).
    expect(answerPrices([chosen(1.255, 3)], 1, 2, next).map((p) => p.price)).toEqual([1.26]);
    expect(answerPrices([chosen(1.255, 1)], 1, 2, next)).toEqual([]);
    // A EUR deal price of 1.25 in USD at 4 decimals.
    expect(answerPrices([chosen(1.25 / 0.92, 3)], 1, 4, next).map((p) => p.price)).toEqual([1.3587]);
    // Rounded up past the value or the campaign's cap (9 USD; 8.27 EUR at 0 decimals is 9 EUR, 9.78 USD): not bid.
    expect(answerPrices([chosen(8.99, 3, 9)], 0.92, 0, next)).toEqual([]);
    expect(answerPrices([chosen(8.99, 3, 9.8)], 0.92, 0, next).map((p) => p.price)).toEqual([9]);
  });

  it('a floor in the answer currency is that floor, whatever its round trip through USD left', () => {
    let id = 0;
    const next = () => String(++id);
    const jpy = 150;
    // 1690 JPY comes back as 1690.0000000000002: the deal is answered at 1690, a bid at the floor is kept at 1690.
    const deal = { impid: '1', el: { cand: {} as never, floorUsd: 1690 / jpy }, pctr: 0.01, bidUsd: 1690 / jpy, multiplier: 1, ctxIndex: 0, segment: '', auctionType: 3, ceilingUsd: 100 } as Chosen;
    expect(answerPrices([deal], jpy, 4, next).map((p) => p.price)).toEqual([1690]);
    expect(answerPrices([{ ...deal, auctionType: 1 }], jpy, 4, next).map((p) => p.price)).toEqual([1690]);
    // A rate a reload removed (NaN) answers nothing rather than a price of null.
    expect(answerPrices([{ ...deal, auctionType: 2 }], NaN, 4, next)).toEqual([]);
  });
});

describe('bids of one campaign across the imps of a request', () => {
  // Two campaigns on three imps: A (worth more) and B, each with one creative.
  const camp = (id: string, valueUsd: number) => ({ id, goal: { type: 'cpm', valueUsd }, maxBidCpmUsd: 100 }) as Campaign;
  const A = camp('A', 3);
  const B = camp('B', 2);
  const imps = (o: { capLeftA?: number; podids?: Array<string | undefined>; media?: 'video' | 'audio' }): PriceableImp<Priceable>[] =>
    [0, 1, 2].map((k) => ({
      imp: { id: String(k + 1), ...(o.podids?.[k] !== undefined ? { [o.media ?? 'video']: { podid: o.podids[k] } } : {}) },
      ctx,
      eligible: [
        { cand: { idx: 0, campaign: A, creative: { id: 'a' } as never }, floorUsd: 0, capLeft: o.capLeftA },
        { cand: { idx: 1, campaign: B, creative: { id: 'b' } as never }, floorUsd: 0 },
      ],
    }));
  const flat: ChooseDeps['pacer'] = { multiplier: () => 1, peekMultiplier: () => 1, calibratePctr: (_c: string, p: number) => p, calibratePcvr: (_c: string, p: number) => p };
  const choose = (plan: PriceableImp<Priceable>[]) =>
    chooseBids(plan, new Float32Array(6).fill(0.01), 0, 2, false, { pacer: flat, price: createPricer(null), shortlist: { learn: () => {} }, internSegment: (s) => s }).chosen.map((c) => c.el.cand.campaign.id);

  it('gives a capped campaign no more bids than its cap leaves the user, the rest to the next best', () => {
    expect(choose(imps({}))).toEqual(['A', 'A', 'A']);
    expect(choose(imps({ capLeftA: Infinity }))).toEqual(['A', 'A', 'A']);
    expect(choose(imps({ capLeftA: 1 }))).toEqual(['A', 'B', 'B']);
    expect(choose(imps({ capLeftA: 2 }))).toEqual(['A', 'A', 'B']);
  });

  it('gives a campaign one bid per ad pod (imps sharing video.podid)', () => {
    expect(choose(imps({ podids: ['p1', 'p1', 'p1'] }))).toEqual(['A', 'B']);
    expect(choose(imps({ podids: ['p1', 'p2', 'p1'] }))).toEqual(['A', 'A', 'B']);
    expect(choose(imps({ podids: ['p1', undefined, 'p1'] }))).toEqual(['A', 'A', 'B']);
  });

  it('and one per audio ad pod (OpenRTB 2.6 Audio has the same pod fields as Video)', () => {
    expect(choose(imps({ podids: ['brk1', 'brk1', undefined], media: 'audio' }))).toEqual(['A', 'B', 'A']);
    expect(choose(imps({ podids: ['brk1', 'brk2', 'brk1'], media: 'audio' }))).toEqual(['A', 'A', 'B']);
  });
});

describe('the opportunity each campaign\'s pacer counts', () => {
  const camp = (id: string, valueUsd: number, maxBidCpmUsd = 100) => ({ id, goal: { type: 'cpm', valueUsd }, maxBidCpmUsd }) as Campaign;
  const counted = (eligible: Array<[Campaign, number]>, mult: Record<string, number> = {}) => {
    const seen: Array<[string, number]> = [];
    const p: ChooseDeps['pacer'] = {
      multiplier: (id: string, _now: number, opp?: { valueCpmUsd: number }) => (seen.push([id, opp!.valueCpmUsd]), mult[id] ?? 1),
      peekMultiplier: (id: string) => mult[id] ?? 1,
      calibratePctr: (_c: string, x: number) => x,
      calibratePcvr: (_c: string, x: number) => x,
    };
    const imp: PriceableImp<Priceable> = { imp: { id: '1' }, ctx, eligible: eligible.map(([campaign, floorUsd], idx) => ({ cand: { idx, campaign, creative: { id: `k${idx}` } as never }, floorUsd })) };
    const out = chooseBids([imp], new Float32Array(eligible.length).fill(0.01), 0, 2, false, { pacer: p, price: createPricer(null), shortlist: { learn: () => {} }, internSegment: (x) => x });
    return { seen, chosen: out.chosen.map((c) => c.el.cand.campaign.id) };
  };

  it('at its value where the campaign can reach the floor, at nothing where no bid of it can (a floor above its value or its cap)', () => {
    // Before: A's opportunity under a floor of 4 counted at 3, and a plan over many such spent over
    // auctions it could never win (half the budget left where most floors were above the value).
    expect(counted([[camp('A', 3), 4], [camp('B', 2), 1.5]], { B: 0.1 })).toEqual({ seen: [['A', 0], ['B', 2]], chosen: [] });
    expect(counted([[camp('C', 3, 1), 2]])).toEqual({ seen: [['C', 0]], chosen: [] });
    expect(counted([[camp('D', 3), 3]])).toEqual({ seen: [['D', 3]], chosen: ['D'] });
  });

  it('once per campaign and imp, at its best creative\'s value, whatever number of its creatives are candidates', () => {
    // Asked once per creative, a campaign with four sizes on a four-size slot planned on four
    // auctions per imp and learnt its weaker sizes' values as opportunities of their own.
    const E = { id: 'E', goal: { type: 'cpc', valueUsd: 1 }, maxBidCpmUsd: 100 } as Campaign;
    const F = { id: 'F', goal: { type: 'cpc', valueUsd: 1 }, maxBidCpmUsd: 100 } as Campaign;
    const seen: Array<[string, number]> = [];
    const p: ChooseDeps['pacer'] = {
      multiplier: (id: string, _now: number, opp?: { valueCpmUsd: number }) => (seen.push([id, opp!.valueCpmUsd]), id === 'E' ? 0.5 : 1),
      peekMultiplier: () => 1,
      calibratePctr: (_c: string, x: number) => x,
      calibratePcvr: (_c: string, x: number) => x,
    };
    // E's second creative is the best (30 CPM); its third sits under a floor it cannot reach.
    const owners = [E, E, F, E];
    const floors = [0, 0, 0, 100];
    const imp: PriceableImp<Priceable> = { imp: { id: '1' }, ctx, eligible: owners.map((campaign, idx) => ({ cand: { idx, campaign, creative: { id: `k${idx}` } as never }, floorUsd: floors[idx] })) };
    const out = chooseBids([imp], Float32Array.from([0.01, 0.03, 0.02, 0.05]), 0, 2, false, { pacer: p, price: createPricer(null), shortlist: { learn: () => {} }, internSegment: (x) => x });
    expect(seen.map(([id, v]) => [id, Math.round(v * 1e3) / 1e3])).toEqual([['E', 30], ['F', 20]]);
    // E's multiplier (0.5) prices each of its creatives: 15 CPM for its best, under F's 20.
    expect(out.chosen.map((c) => [c.el.cand.creative.id, c.multiplier])).toEqual([['k2', 1]]);
  });

  it('once per campaign on an imp of more entries than are scanned (the Map path)', () => {
    const camps = Array.from({ length: 25 }, (_, k) => ({ id: `m${k}`, goal: { type: 'cpc', valueUsd: 1 }, maxBidCpmUsd: 100 }) as Campaign);
    // Each campaign twice, interleaved: 50 entries, the second of each worth more.
    const owners = [...camps, ...camps];
    const pctr = owners.map((_, i) => (i < 25 ? 0.01 : 0.02));
    const seen = new Map<string, number[]>();
    const p: ChooseDeps['pacer'] = { multiplier: (id: string, _n: number, opp?: { valueCpmUsd: number }) => (seen.set(id, [...(seen.get(id) ?? []), Math.round(opp!.valueCpmUsd)]), 1), peekMultiplier: () => 1, calibratePctr: (_c: string, x: number) => x, calibratePcvr: (_c: string, x: number) => x };
    const imp: PriceableImp<Priceable> = { imp: { id: '1' }, ctx, eligible: owners.map((campaign, idx) => ({ cand: { idx, campaign, creative: { id: `k${idx}` } as never }, floorUsd: 0 })) };
    chooseBids([imp], Float32Array.from(pctr), 0, 2, false, { pacer: p, price: createPricer(null), shortlist: { learn: () => {} }, internSegment: (x) => x });
    expect([...seen.values()]).toEqual(camps.map(() => [20]));
  });

  it("as its best entry is auctioned, whatever the campaign's entries' order (a deal's own `at`)", () => {
    const E = { id: 'E', goal: { type: 'cpc', valueUsd: 1 }, maxBidCpmUsd: 100 } as Campaign;
    const seen = (order: Array<{ pctr: number; at: number; dealId?: string }>) => {
      const opps: Array<{ valueCpmUsd: number; firstPrice: boolean }> = [];
      const p: ChooseDeps['pacer'] = { multiplier: (_id: string, _n: number, opp?: { valueCpmUsd: number; firstPrice: boolean }) => (opps.push(opp!), 1), peekMultiplier: () => 1, calibratePctr: (_c: string, x: number) => x, calibratePcvr: (_c: string, x: number) => x };
      const imp: PriceableImp<Priceable> = { imp: { id: '1' }, ctx, eligible: order.map((o, idx) => ({ cand: { idx, campaign: E, creative: { id: `k${idx}` } as never }, floorUsd: 0, auctionType: o.at, dealId: o.dealId })) };
      chooseBids([imp], Float32Array.from(order.map((o) => o.pctr)), 0, 2, false, { pacer: p, price: createPricer(null), shortlist: { learn: () => {} }, internSegment: (x) => x });
      return opps.map((o) => o.firstPrice);
    };
    // A first-price deal on a weak creative, the open second-price auction on the best one.
    const deal = { pctr: 0.001, at: 1, dealId: 'd' };
    const open = { pctr: 0.01, at: 0 };
    expect(seen([deal, open])).toEqual([false]);
    expect(seen([open, deal])).toEqual([false]);
    expect(seen([{ ...deal, pctr: 0.05 }, open])).toEqual([true]);
  });
});

describe('a fixed-price deal among the seat\'s own candidates', () => {
  // The review's case (2026-12-06): acme worth 110.8 CPM reaches the imp through a deal at a fixed
  // 5; greenleaf, worth 17.3, bids 10 in the open first-price auction.
  const acme = { id: 'acme', goal: { type: 'cpc', valueUsd: 0.9 }, maxBidCpmUsd: 200 } as Campaign;
  const greenleaf = { id: 'greenleaf', goal: { type: 'cpc', valueUsd: 0.6 }, maxBidCpmUsd: 10 } as Campaign;
  const p: ChooseDeps['pacer'] = { multiplier: () => 1, peekMultiplier: () => 1, calibratePctr: (_c: string, x: number) => x, calibratePcvr: (_c: string, x: number) => x };
  const choose = (acmePctr: number) => {
    const imp: PriceableImp<Priceable> = {
      imp: { id: '1' },
      ctx,
      eligible: [
        { cand: { idx: 0, campaign: greenleaf, creative: { id: 'g' } as never }, floorUsd: 0, auctionType: 2 },
        { cand: { idx: 1, campaign: acme, creative: { id: 'a' } as never }, floorUsd: 5, auctionType: 3, dealId: 'ACME-D1' },
      ],
    };
    return chooseBids([imp], Float32Array.from([0.029, acmePctr]), 0, 2, false, { pacer: p, price: createPricer(null), shortlist: { learn: () => {} }, internSegment: (x) => x }).chosen;
  };

  it('goes to the campaign worth more, at the deal\'s price', () => {
    const [c] = choose(0.123);
    expect([c.el.cand.campaign.id, c.auctionType, c.bidUsd]).toEqual(['acme', 3, 5]);
  });

  it('in first price, not at its full value against bids shaded to the market', () => {
    // The fix review's case: competition around 6 CPM; bigOpen worth 100 bids 7.74 shaded in the
    // open first-price auction, smallDeal worth 12 buys a deal at a fixed 5. Ranked at its value,
    // the deal took the impression.
    const seg = segmentOf(ctx);
    const shader = createShader({ minObservations: 10 });
    let s = 1;
    const rnd = () => (s = (s * 16807) % 2147483647) / 2147483647;
    for (let i = 0; i < 3000; i++) {
      const m = 6 * Math.exp(0.2 * (rnd() + rnd() + rnd() - 1.5));
      const b = 4 + 6 * rnd();
      shader.observe(seg, b, b > m, m);
    }
    const bigOpen = { id: 'bigOpen', goal: { type: 'cpm', valueUsd: 100 }, maxBidCpmUsd: 200 } as Campaign;
    const smallDeal = { id: 'smallDeal', goal: { type: 'cpm', valueUsd: 12 }, maxBidCpmUsd: 200 } as Campaign;
    const imp: PriceableImp<Priceable> = {
      imp: { id: '1' },
      ctx,
      eligible: [
        { cand: { idx: 0, campaign: bigOpen, creative: { id: 'o' } as never }, floorUsd: 0.5, auctionType: 0 },
        { cand: { idx: 1, campaign: smallDeal, creative: { id: 'd' } as never }, floorUsd: 5, auctionType: 3, dealId: 'D1' },
      ],
    };
    const price = createPricer(shader);
    const { chosen } = chooseBids([imp], Float32Array.from([0.01, 0.01]), 0, 1, false, { pacer: p, price, shortlist: { learn: () => {} }, internSegment: (x) => x });
    expect(chosen.map((c) => c.el.cand.campaign.id)).toEqual(['bigOpen']);
    expect(chosen[0].bidUsd).toBeLessThan(10);
    // Worth more than bigOpen's shaded bid in the open auction, the deal is sent, at its price.
    const bigDeal = { ...smallDeal, goal: { type: 'cpm', valueUsd: 300 }, maxBidCpmUsd: 400 } as Campaign;
    const again = chooseBids([{ ...imp, eligible: [imp.eligible[0], { ...imp.eligible[1], cand: { ...imp.eligible[1].cand, campaign: bigDeal } }] }], Float32Array.from([0.01, 0.01]), 0, 1, false, { pacer: p, price, shortlist: { learn: () => {} }, internSegment: (x) => x }).chosen;
    expect(again.map((c) => [c.el.cand.campaign.id, c.bidUsd])).toEqual([['smallDeal', 5]]);
  });

  it('not to one whose value is under the open bid', () => {
    // acme worth 7.2 CPM: the open bid of 10 wins the seat's choice.
    const [c] = choose(0.008);
    expect([c.el.cand.campaign.id, c.bidUsd]).toEqual(['greenleaf', 10]);
  });
});

describe('a CPA campaign', () => {
  it('is priced on its own expected CVR (goal.cvr), as the calibration corrects it, and the cut learns that pCVR', () => {
    const c = { id: 'a', goal: { type: 'cpa', valueUsd: 40, cvr: 0.01 }, maxBidCpmUsd: 500 } as Campaign;
    const bases: number[] = [];
    const learnt: Array<number | undefined> = [];
    const p: ChooseDeps['pacer'] = { multiplier: () => 1, peekMultiplier: () => 1, calibratePctr: (_c: string, x: number) => x, calibratePcvr: (_c: string, x: number) => (bases.push(x), 2 * x) };
    const imp: PriceableImp<Priceable> = { imp: { id: '1' }, ctx, eligible: [{ cand: { idx: 0, campaign: c, creative: { id: 'k' } as never }, floorUsd: 0 }] };
    const { chosen } = chooseBids([imp], Float32Array.from([0.05]), 0, 2, false, { pacer: p, price: createPricer(null), shortlist: { learn: (_i, _p, _m, pcvr) => learnt.push(pcvr) }, internSegment: (x) => x });
    expect(bases).toEqual([0.01]);
    // 1000 × pCTR 0.05 × calibrated pCVR 0.02 × 40 USD: 40 CPM (at the 0.05 default, 100 before calibration).
    expect(chosen[0].bidUsd).toBeCloseTo(40, 5);
    expect(learnt).toEqual([0.02]);
  });
});

describe('the market segment of an imp', () => {
  it('keeps what a request sent from growing the shader: long or odd ids hashed, odd numbers 0', () => {
    expect(segmentOf(ctx)).toBe('x|banner|site|s~h3d2~300x250');
    const long = segmentOf({ ...ctx, siteOrAppId: 's'.repeat(100_000) });
    expect(long).toMatch(/^x\|banner\|site\|#[0-9a-f]{1,8}~h3d2~300x250$/);
    expect(segmentOf({ ...ctx, siteOrAppId: 's'.repeat(100_000) })).toBe(long);
    expect(segmentOf({ ...ctx, siteOrAppId: 'a~b' }).split('~')).toHaveLength(3);
    expect(segmentOf({ ...ctx, siteOrAppId: 'a|b' }).split('|')).toHaveLength(4);
    expect(segmentOf({ ...ctx, w: 300.5, h: 1e300, deviceType: -1 } as ImpContext)).toBe('x|banner|site|s~h3d0~0x0');
  });
});
