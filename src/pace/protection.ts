/**
 * The budget a max-value plan keeps back, before paying for an opportunity, for the rest of the
 * day's opportunities of more value per dollar (revenue management's protection level: Littlewood's
 * rule, with the higher demand pooled). Planned once per solve from the plan's expected wins, spend
 * and value per value bin; worked out per bin on first use.
 */
import { BINS, BINS_PER_DECADE, binMid, binOf } from './landscape.js';
import { Curves, type PlanCurves } from './optimiser.js';

export class BudgetProtection {
  /** Suffix sums over value bins of the plan for the rest of the day: expected wins, spend (USD), value. */
  private readonly N = new Float64Array(BINS + 1);
  private readonly S = new Float64Array(BINS + 1);
  private readonly V = new Float64Array(BINS + 1);
  /** Per value bin, the budget (USD) kept back from its opportunities under the plan; NaN: not worked out yet. */
  private readonly Y = new Float64Array(BINS);
  private curves: PlanCurves | null = null;
  private logLambda = 0;
  /** Whether a plan stands: off where the last solve made none, or none may keep anything back. */
  active = false;
  /** An upper bound of every bin's `keep` under the plan: a budget left above it is never cut. */
  max = 0;

  off(): void {
    this.active = false;
  }

  /** The plan of a solve at `lambda` on `curves` for `n` opportunities of value distribution `valueProbs`. */
  plan(curves: PlanCurves, lambda: number, n: number, valueProbs: Float64Array): void {
    if (!(1 / lambda > 0)) {
      this.active = false;
      return;
    }
    const { N, S, V } = this;
    this.active = true;
    this.curves = curves;
    this.logLambda = Math.log(lambda);
    this.Y.fill(NaN);
    N[BINS] = S[BINS] = V[BINS] = 0;
    let dearest = 0;
    for (let j = BINS - 1; j >= 0; j--) {
      const q = n * valueProbs[j];
      if (q > 0) {
        const x = Curves.position(Math.log(binMid(j)) - this.logLambda);
        const w = curves.winAt(x);
        const pay = curves.payAt(x);
        N[j] = N[j + 1] + q * w;
        S[j] = S[j + 1] + (q * pay) / 1000;
        V[j] = V[j + 1] + (q * binMid(j) * w) / 1000;
        if (w > 0) dearest = Math.max(dearest, pay / w / 1000);
      } else {
        N[j] = N[j + 1];
        S[j] = S[j + 1];
        V[j] = V[j + 1];
      }
    }
    // No bin keeps more than the whole plan's wins at the dearest bin's price (`keepFor`'s upper end).
    this.max = dearest * (N[0] + 12 * Math.sqrt(N[0]) + 30);
  }

  /**
   * The budget (USD) to keep for the rest of the day's opportunities of more value per dollar than
   * `value`'s before paying for it: the least x at which a dollar of budget, the x-th from the
   * bottom, is worth no more to the higher value bins than to this opportunity. Each higher bin's
   * wins are Poisson at the plan's expected count; the bins are taken in groups, and the demand of
   * the groups worth more per dollar than each is pooled with its own (its count Poisson, each win
   * at the pooled mean price): the x-th dollar goes to the first group, from the most valuable per
   * dollar down, whose pooled demand reaches it. With one higher bin this is Littlewood's rule. The rule before, Littlewood's per bin summed (EMSR-a),
   * kept a win's price for every fine bin whose expected wins exceeded the value ratio: where an
   * over-confident pCTR spreads the top values over many sparse bins it held 15-20 % of tight
   * budgets unspent to the day's end and bought 3-9 % fewer true clicks (derived shapes k2997mis
   * and k2821cheap; docs/pacing-history.md, "Tight budgets: the higher bins' demand pooled").
   * Worked out once per bin and plan, at the bin's middle value and the plan's bid for it; the
   * caller skips it while the bid fits under the budget left less `max` (where budgets are loose:
   * 0.2-0.3 µs per bid against EMSR-a's 1.8-2.3). Where they bind it costs 3.5-4.4 µs per bid
   * against EMSR-a's 1.8-2.1 (a campaign at 5 opportunities a second, 10 s slots): once per value
   * group (a quarter decade) it cost 0.86-0.90 and bought the same expected clicks, but fewer
   * realised ones on the dev logs at 1/8 (docs/pacing-history.md, "Tight budgets: the higher bins'
   * demand pooled").
   */
  keep(value: number): number {
    if (!this.active) return 0;
    const i = binOf(value);
    if (Number.isNaN(this.Y[i])) this.Y[i] = this.keepFor(i);
    return this.Y[i];
  }

  private keepFor(i: number): number {
    const { N, S, V, curves } = this;
    if (!(N[i + 1] > 0) || curves === null) return 0;
    const x = Curves.position(Math.log(binMid(i)) - this.logLambda);
    const pay = curves.payAt(x);
    if (!(pay > 0)) return 0;
    const rL = (binMid(i) * curves.winAt(x)) / pay;
    // Higher bins worth more per dollar than this one, in groups of fine bins from the top: each
    // group's expected wins, spend and value per dollar.
    let g = 0;
    let gn = 0;
    let gv = 0;
    let gs = 0;
    for (let j = BINS - 1; j > i; j--) {
      const nj = N[j] - N[j + 1];
      const sj = S[j] - S[j + 1];
      if (nj > 1e-12 && sj > 0 && (V[j] - V[j + 1]) / sj > rL) {
        gn += nj;
        gv += V[j] - V[j + 1];
        gs += sj;
      }
      if ((j % PROTECT_GROUP === 0 || j === i + 1) && gs > 0) {
        // Placed among the groups before it by value per dollar, after those worth as much (stable).
        let t = g++;
        for (; t > 0 && keepR[t - 1] < gv / gs; t--) {
          keepN[t] = keepN[t - 1];
          keepP[t] = keepP[t - 1];
          keepR[t] = keepR[t - 1];
        }
        keepN[t] = gn;
        keepP[t] = gs;
        keepR[t] = gv / gs;
        gn = gv = gs = 0;
      }
    }
    // A dollar goes to the group worth most per dollar first: the groups are nested in that order,
    // which is the top-down order of value wherever a dearer bin is worth less per dollar than a
    // cheaper one under it. Nested by value there, the worth below was not monotone and the
    // bisection could stop at a later crossing, keeping 5-15 % more (docs/pacing-history.md,
    // "Protection nested by value per dollar"). Each group's count and price become the pooled
    // demand's down to it.
    let n = 0;
    let sp = 0;
    for (let t = 0; t < g; t++) {
      n += keepN[t];
      sp += keepP[t];
      keepN[t] = n;
      keepP[t] = sp / n;
    }
    if (g === 0) return 0;
    keepLen.fill(0, 0, g);
    // The marginal dollar's worth at x: Σ_t (r_t − r_{t+1}) P(D_t ≥ x), D_t the pooled demand down to group t.
    const worth = (at: number): number => {
      let m = 0;
      for (let t = 0; t < g; t++) m += (keepR[t] - (t + 1 < g ? keepR[t + 1] : 0)) * groupTail(t, Math.ceil(at / keepP[t] - 1e-9));
      return m;
    };
    let lo = 0;
    let hi = keepP[0] * 1e-6;
    if (worth(hi) <= rL) return 0;
    // The demand's upper end: past it the worth is nil.
    hi = 0;
    for (let t = 0; t < g; t++) hi = Math.max(hi, keepP[t] * (keepN[t] + 12 * Math.sqrt(keepN[t]) + 30));
    // To a thousandth of the pooled price of every higher bin: the worth steps at multiples of the prices.
    for (let k = 0; k < 40 && hi - lo > 1e-3 * keepP[g - 1]; k++) {
      const mid = 0.5 * (lo + hi);
      if (worth(mid) > rL) lo = mid;
      else hi = mid;
    }
    return hi;
  }
}

/** Fine value bins pooled into one group of the higher demand (4 a decade). */
const PROTECT_GROUP = BINS_PER_DECADE / 4;
const keepN = new Float64Array(Math.ceil(BINS / PROTECT_GROUP) + 2);
const keepP = new Float64Array(keepN.length);
const keepR = new Float64Array(keepN.length);

/** The Poisson CDF of each group's count (mean `keepN[t]` ≤ 50), filled as far as asked: `keepLen[t]` terms. */
const KEEP_TERMS = Math.ceil(50 + 15 * Math.sqrt(50) + 31);
const keepCdf = new Float64Array(keepN.length * KEEP_TERMS);
const keepPmf = new Float64Array(keepN.length);
const keepLen = new Int32Array(keepN.length);

/**
 * P(K ≥ k), K Poisson with group t's mean (a normal approximation above 50). The bisection asks each
 * group's tail at many k: its CDF is summed once, as far as asked, in `keepCdf`.
 */
function groupTail(t: number, k: number): number {
  const mean = keepN[t];
  if (k <= 0) return 1;
  if (!(mean > 0)) return 0;
  if (mean > 50) return 0.5 * erfc((k - 0.5 - mean) / Math.sqrt(2 * mean));
  if (k > mean + 15 * Math.sqrt(mean) + 30) return 0;
  const at = t * KEEP_TERMS;
  let n = keepLen[t];
  if (n === 0) {
    keepPmf[t] = Math.exp(-mean);
    keepCdf[at] = keepPmf[t];
    n = 1;
  }
  for (; n < k; n++) {
    keepPmf[t] *= mean / n;
    keepCdf[at + n] = keepCdf[at + n - 1] + keepPmf[t];
  }
  keepLen[t] = n;
  return Math.max(0, 1 - keepCdf[at + k - 1]);
}

/** erfc (Numerical Recipes' Chebyshev fit, relative error below 1.2e-7). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? r : 2 - r;
}

