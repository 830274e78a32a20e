/**
 * The small optimisation the value pacer re-solves each slot: over the rest of the day, with
 * `n` expected opportunities whose values follow `values` and a market whose prices follow
 * `prices` (both per bin of landscape.ts), find the value threshold λ whose bids spend the
 * remaining budget in expectation. This is the dual of the fractional knapsack "maximise value
 * won subject to spend <= budget" (the LP of Ferreira, Simchi-Levi & Wang 2018 with sampled
 * parameters): in second price the optimal bid is value / λ; in first price it is
 * argmax_b G(b) (value / λ - b), with G the win curve (shading and pacing as one decision); either
 * is then cut to the campaign's bid cap, as the bid path cuts it. Opportunities in both kinds of
 * auction are planned each by its own kind, in the share of them each kind has (`MixedCurves`).
 */
import { BINS, binMid, binTop } from './landscape.js';

export interface SolveInput {
  /** Probability of each value bin among the coming opportunities (sums to 1). */
  values: Float64Array;
  /** Probability of each market-price bin (sums to 1). */
  prices: Float64Array;
  /** Expected opportunities over the rest of the horizon. */
  opportunities: number;
  /** Budget left for them, in the prices' unit / 1000 (CPM prices, spend per impression = price / 1000). */
  budget: number;
  /**
   * The auctions the opportunities are sold in: true (or 1) first price, false (or 0) second price,
   * a number between the share of them in first price (`planCurves`).
   */
  firstPrice: boolean | number;
  /** First-price bids shaded after pacing (default); false: the paced value is bid as is (see Curves). */
  shaded?: boolean;
  /** Smallest λ allowed: 1 never bids above value (the default); lower lets bids exceed the value scale. */
  minLambda?: number;
  /** The campaign's bid cap (`maxBidCpmUsd`) in the prices' unit; default none (see Curves). */
  cap?: number;
  /**
   * The horizon by parts (its UTC hours): each one's expected opportunities (summing to
   * `opportunities`) and the most it may spend (`budget.hourlyCapShare`). A part's spend at λ stops
   * at its cap, and its value pro rata. Planned uncapped, λ counted on the busy hours' spend beyond
   * their caps, stayed too high for the hours under them, and left 7 % of the budget unspent.
   */
  parts?: { opportunities: ArrayLike<number>; caps: ArrayLike<number> };
}

export interface Solution {
  lambda: number;
  /** Expected spend and value won at that λ over the horizon (value in the values' unit / 1000). */
  spend: number;
  value: number;
}

const MAX_LAMBDA = 1e9;

/** What the solve reads of a plan's auctions: win probability and payment at a paced value's interpolation position (`Curves.position`). */
export interface PlanCurves {
  winAt(x: number): number;
  payAt(x: number): number;
}

/**
 * Win probability and expected payment per opportunity as functions of the paced value u = v / λ,
 * tabulated per bin of u and interpolated in log space so that spend is continuous in λ.
 */
export class Curves implements PlanCurves {
  readonly win = new Float64Array(BINS);
  readonly pay = new Float64Array(BINS);
  /**
   * Interpolation position of the cap where the bid is u itself (second price, unshaded first
   * price): u above it bids the cap, so the tables are read there.
   */
  readonly capX: number;

  /**
   * `shaded` false: a first-price bidder that bids its paced value u itself (no shader after the
   * pacer) wins every price up to u and pays u; tabled as the optimally shaded bid it would plan
   * on paying less than it does and overspend its plan.
   *
   * `cap`: the campaign's `maxBidCpmUsd`, which bounds the bid after pacing and shading (src/price/price.ts):
   * the bid for u is min(cap, bid(u)), so win and payment stop growing where the bid reaches it.
   * Planned uncapped, a campaign worth far more than its cap expected wins and spend its bids could
   * not get, set λ too high for its opportunities under the cap, and left its budget unspent.
   */
  constructor(prices: Float64Array, firstPrice: boolean, shaded = true, cap = Infinity) {
    const capX = cap < Infinity ? Curves.position(Math.log(cap)) : Infinity;
    this.capX = firstPrice && shaded ? Infinity : capX;
    if (firstPrice && !shaded) {
      let G = 0;
      for (let k = 0; k < BINS; k++) {
        G += prices[k];
        this.win[k] = G;
        this.pay[k] = G * binTop(k);
      }
      return;
    }
    if (!firstPrice) {
      // Second price: bidding u wins every price under u and pays that price.
      let F = 0;
      let S = 0;
      for (let k = 0; k < BINS; k++) {
        F += prices[k];
        S += prices[k] * binMid(k);
        this.win[k] = F;
        this.pay[k] = S;
      }
      return;
    }
    // First price: the bid is a bin's top (it wins that bin and every one under it) and is paid
    // in full; the best bin for u never moves down as u grows (increasing differences), so one
    // forward scan serves every u.
    const G = new Float64Array(BINS);
    let F = 0;
    for (let k = 0; k < BINS; k++) G[k] = F += prices[k];
    // A bid that would pass the cap is the cap: it wins the prices under it, in log within its bin.
    const capWin = cap < Infinity ? lerp(G, capX) : 1;
    let best = 0;
    for (let m = 0; m < BINS; m++) {
      const u = binTop(m);
      let bestGain = G[best] * (u - binTop(best));
      for (let k = best + 1; k <= m; k++) {
        const gain = G[k] * (u - binTop(k));
        if (gain > bestGain) {
          bestGain = gain;
          best = k;
        }
      }
      if (bestGain <= 0) {
        this.win[m] = 0;
        this.pay[m] = 0;
      } else if (binTop(best) > cap) {
        this.win[m] = capWin;
        this.pay[m] = capWin * cap;
      } else {
        this.win[m] = G[best];
        this.pay[m] = G[best] * binTop(best);
      }
    }
  }

  /**
   * Interpolation position of paced value u, given as ln u: the bin k it falls in and how far
   * through it (0..1) in log space. Bin 0 (prices up to the grid's floor) counts as reached.
   */
  static position(logU: number): number {
    const x = (logU - LOG_MIN) / STEP;
    if (x <= 0) return 0;
    return Math.min(BINS - 1, x);
  }

  winAt(x: number): number {
    return lerp(this.win, Math.min(x, this.capX));
  }

  payAt(x: number): number {
    return lerp(this.pay, Math.min(x, this.capX));
  }
}

/**
 * A campaign that buys in both kinds of auction (a first-price exchange and a second-price one):
 * share `share` of its opportunities first price, each curve as its own kind prices it. Planned
 * on the majority's curves alone, the minority's auctions were priced as the other kind: at 55 %
 * first price on a cheap exchange and 45 % second price on a dear one, its second-price auctions
 * planned as shaded first-price ones were expected to spend less than its truthful bids there did,
 * and the campaign front-loaded its spend for 94.3-94.9 % of the value a hindsight λ buys
 * (docs/pacing-history.md, "Both kinds of auction in one campaign").
 */
export class MixedCurves implements PlanCurves {
  /** The mixture's tables, read as `Curves` reads its own up to the second-price cap. */
  private readonly win = new Float64Array(BINS);
  private readonly pay = new Float64Array(BINS);
  private readonly capX: number;
  /** The second-price part beyond its cap, where its bid is the cap whatever u. */
  private readonly capWin: number;
  private readonly capPay: number;

  constructor(
    readonly first: Curves,
    readonly second: Curves,
    readonly share: number,
  ) {
    // One table read per query, not one per kind: the solve reads them ~5,000 times.
    for (let k = 0; k < BINS; k++) {
      this.win[k] = share * first.win[k] + (1 - share) * second.win[k];
      this.pay[k] = share * first.pay[k] + (1 - share) * second.pay[k];
    }
    // Where first price's own cap applies (unshaded) it is the same position; shaded, it has none.
    this.capX = second.capX;
    this.capWin = this.capX < Infinity ? (1 - share) * second.winAt(this.capX) : 0;
    this.capPay = this.capX < Infinity ? (1 - share) * second.payAt(this.capX) : 0;
  }

  winAt(x: number): number {
    return x <= this.capX ? lerp(this.win, x) : this.share * this.first.winAt(x) + this.capWin;
  }

  payAt(x: number): number {
    return x <= this.capX ? lerp(this.pay, x) : this.share * this.first.payAt(x) + this.capPay;
  }
}

/**
 * The curves of opportunities a share `firstPriceShare` (true: 1, false: 0) of which are sold in
 * first price: one kind's own `Curves` at a share of 0 or 1, the opportunity-weighted mixture between.
 */
export function planCurves(prices: Float64Array, firstPriceShare: boolean | number, shaded = true, cap = Infinity): Curves | MixedCurves {
  const s = Number(firstPriceShare);
  if (s >= 1) return new Curves(prices, true, shaded, cap);
  if (!(s > 0)) return new Curves(prices, false, shaded, cap);
  return new MixedCurves(new Curves(prices, true, shaded, cap), new Curves(prices, false, shaded, cap), s);
}

/** Table value at fractional index x: a whole bin is reached at its top. */
function lerp(a: Float64Array, x: number): number {
  const k = Math.ceil(x);
  if (k === 0) return a[0];
  const t = x - (k - 1);
  return a[k - 1] + t * (a[k] - a[k - 1]);
}

const LOG_MIN = Math.log(binTop(0));
const STEP = Math.log(binTop(1)) - LOG_MIN;
const LOG_MID = Float64Array.from({ length: BINS }, (_, k) => Math.log(binMid(k)));

/** Expected spend and value per opportunity at λ (payments as CPM; / 1000 per impression). */
function perOpportunity(values: Float64Array, curves: PlanCurves, lambda: number): [number, number] {
  let spend = 0;
  let value = 0;
  const logL = Math.log(lambda);
  for (let j = 0; j < BINS; j++) {
    const q = values[j];
    if (q <= 0) continue;
    const x = Curves.position(LOG_MID[j] - logL);
    spend += q * curves.payAt(x);
    value += q * binMid(j) * curves.winAt(x);
  }
  return [spend / 1000, value / 1000];
}

/**
 * The λ >= minLambda whose expected spend over the horizon is the budget (bisection in log λ;
 * spend falls as λ grows). When even minLambda cannot spend the budget it is returned as is.
 */
export function solveLambda(s: SolveInput, curves: PlanCurves = planCurves(s.prices, s.firstPrice, s.shaded ?? true, s.cap)): Solution {
  const minLambda = s.minLambda ?? 1;
  if (!(s.budget > 0)) return { lambda: Infinity, spend: 0, value: 0 };
  const n = Math.max(0, s.opportunities);
  const parts = s.parts;
  const total = (lambda: number): Solution => {
    const [sp, v] = perOpportunity(s.values, curves, lambda);
    if (parts === undefined) return { lambda, spend: n * sp, value: n * v };
    let spend = 0;
    let value = 0;
    for (let k = 0; k < parts.opportunities.length; k++) {
      const nk = Math.max(0, parts.opportunities[k]);
      const cut = nk * sp > parts.caps[k] ? parts.caps[k] / (nk * sp) : 1;
      spend += nk * sp * cut;
      value += nk * v * cut;
    }
    return { lambda, spend, value };
  };
  const loose = total(minLambda);
  if (loose.spend <= s.budget) return loose;
  let lo = Math.log(minLambda);
  let hi = Math.log(MAX_LAMBDA);
  for (let i = 0; i < 60 && hi - lo > 1e-4; i++) {
    const mid = (lo + hi) / 2;
    if (total(Math.exp(mid)).spend > s.budget) lo = mid;
    else hi = mid;
  }
  return total(Math.exp(hi));
}
