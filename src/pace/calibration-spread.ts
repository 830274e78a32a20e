/**
 * The empirical-Bayes spread of one rate's calibration across creatives (Spread): the pooled centre,
 * the relative spread τ² fitted by DerSimonian and Kacker's method of moments against a prior, and
 * the learnt share of creatives unlike the others, priced as a mixture of Gamma priors; with ln Γ
 * (Lanczos) and the priors only it reads. createCalibration (src/pace/calibration.ts) keeps one for
 * the CTR and, for the CVR, one per campaign (and one for creatives of no campaign told), and refits
 * them on the creatives it has won.
 */
import type { CreativeStats } from './calibration.js';

/** The smallest relative spread fitted: a prior of at most 10,000 events. */
const MIN_SPREAD = 1e-4;
/**
 * The prior of the share of creatives unlike the others (the model off on them alone): Beta(1, 99),
 * a hundredth, worth a hundred creatives; learnt from the creatives' counts as the spread is. A
 * larger share leaks chance into right creatives' prices: a tenth gave them an rms error of 0.070
 * against 0.059 at 20 expected clicks each, and a fiftieth cost 0.8 % of clicks on one simulated
 * day (docs/pacing-results.md, "One creative off among many").
 */
const ATYPICAL_PRIOR: [number, number] = [1, 99];
/**
 * The prior of the typical creatives' relative spread τ²: 0.05 (their factors within about ±22 % of
 * the centre), as uncertain as its own size. A creative further off is the weak component's to
 * price, so the spread of the others need not start wide. At 1 / k0 (±58 % at k0 = 3), the prior
 * before the mixture, each creative's factor followed its own few clicks for most of a day at CTRs
 * of a few per mille, and that noise cost 0.1–0.3 % of the clicks on most of 19 simulated days
 * (docs/pacing-results.md, "A narrower prior for the typical creatives").
 */
const TYPICAL_SPREAD = 0.05;

/**
 * ln Γ(x) for x > 0 (Lanczos, g = 7, nine terms: absolute error about 1e-14 up to x = 100,
 * relative beyond). Written here rather than taken from @stdlib/math-base-special-gammaln, which
 * brings 156 packages (17 MB) for it.
 */
const LANCZOS = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
function lnGamma(x: number): number {
  if (x < 0.5) return lnGamma(x + 1) - Math.log(x);
  x -= 1;
  let a = LANCZOS[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/**
 * One rate's calibration across creatives (clicks per expected click, or conversions per expected
 * conversion): the pooled totals and the fitted relative spread τ² (see createCalibration).
 */
export class Spread {
  /** Relative variance of a creative's factor around the centre. */
  tau2: number;
  /** The pooled rate (the model, 1, until a spread is fitted). */
  centre = 1;
  /** Whether a spread is fitted (two creatives with an expected event each). */
  fitted = false;
  /** The share of creatives unlike the others. */
  share = ATYPICAL_PRIOR[0] / (ATYPICAL_PRIOR[0] + ATYPICAL_PRIOR[1]);
  /** Bumped at each fit: a factor cached under another version is stale. */
  version = 0;
  private readonly lnGammaK0: number;
  /** ln Γ(1 / τ²), kept with τ². */
  private lnGammaEvents = 0;
  /** Each creative's chance of being like the others, per fitting pass (reused). */
  private typical = new Float64Array(0);
  constructor(private readonly k0: number) {
    this.tau2 = 1 / k0;
    this.lnGammaK0 = lnGamma(k0);
  }

  /**
   * The posterior chance that a creative of these counts is unlike the others (0 until fitted):
   * the ratio of the negative-binomial evidence of its counts under the weak Gamma(k0 events) and
   * under the spread's Gamma(1 / τ² events), both of mean `centre` (the terms common to both,
   * −ln O! + O ln E, dropped), against the share's prior odds.
   */
  private atypical(observed: number, expected: number, centre = this.centre): number {
    if (!this.fitted) return 0;
    const k0 = this.k0;
    const events = 1 / this.tau2;
    const rate0 = k0 / centre;
    const rate = events / centre;
    const lnOdds =
      lnGamma(k0 + observed) - this.lnGammaK0 + k0 * Math.log(rate0) - (k0 + observed) * Math.log(rate0 + expected) -
      (lnGamma(events + observed) - this.lnGammaEvents + events * Math.log(rate) - (events + observed) * Math.log(rate + expected));
    const w = 1 / (1 + (Math.exp(-lnOdds) * (1 - this.share)) / this.share);
    // Counts no prior explains (an infinite expectation) are priced on the spread's component.
    return w >= 0 ? w : 0;
  }

  /**
   * The creative's factor: the posterior mean of its observed and expected events under a prior
   * that mixes Gamma(mean `centre`, 1 / τ² events), the creatives' spread, with Gamma(mean
   * `centre`, k0 events) for a creative unlike the others, each weighed by how well it explains the
   * counts. Without the mixture one creative off among many right ones would be held to the centre
   * by up to 10,000 events.
   */
  factor(observed: number, expected: number, scale = 1): number {
    // Expected events counted at `scale` times the rate the fit's were: the centre, a rate per
    // expected event, is 1 / scale times the fitted one (the prior, the model as it is, stays 1).
    const centre = this.fitted ? this.centre / scale : this.centre;
    expected *= scale;
    const weak = (this.k0 + observed) / (this.k0 / centre + expected);
    if (!this.fitted) return weak;
    const events = 1 / this.tau2;
    const w = this.atypical(observed, expected, centre);
    return w * weak + (1 - w) * ((events + observed) / (events / centre + expected));
  }

  /**
   * Fits the centre, the spread and the share on the creatives won, in up to three passes: the
   * first on all of them, each next one weighing a creative by its chance of being like the others
   * under the fit before (an EM step), so that one creative far off does not widen the spread
   * every other is priced on. Stops early once a pass moves no creative's chance by 0.001.
   */
  fit(won: readonly CreativeStats[], observed: (s: CreativeStats) => number, expected: (s: CreativeStats) => number): void {
    this.version++;
    this.fitted = false;
    this.centre = 1;
    this.tau2 = 1 / this.k0;
    this.lnGammaEvents = this.lnGammaK0;
    this.share = ATYPICAL_PRIOR[0] / (ATYPICAL_PRIOR[0] + ATYPICAL_PRIOR[1]);
    if (this.typical.length < won.length) this.typical = new Float64Array(Math.max(won.length, 2 * this.typical.length));
    const p = this.typical.fill(1, 0, won.length);
    for (let pass = 0; pass < 3; pass++) {
      if (pass > 0) {
        let moved = 0;
        for (let i = 0; i < won.length; i++) {
          const q = 1 - this.atypical(observed(won[i]), expected(won[i]));
          moved = Math.max(moved, Math.abs(q - p[i]));
          p[i] = q;
        }
        if (moved < 1e-3) return;
      }
      if (!this.fitOnce(won, p, pass > 0, observed, expected)) return;
    }
  }

  /**
   * One fit, each creative weighed by `p`; false (keeping the fit before) when too few creatives
   * or counts that overflow. The spread is DerSimonian and Kacker's method of moments with weights
   * a = p·E/m: Q = Σ p (O − mE)² / (mE) has mean Σ p − Σ p·a / Σ a with no spread, plus
   * τ²m²(Σ a − Σ a² / Σ a) with one (with p all 1, DerSimonian–Laird's n − 1 and its c).
   */
  private fitOnce(won: readonly CreativeStats[], p: Float64Array, fromFit: boolean, observed: (s: CreativeStats) => number, expected: (s: CreativeStats) => number): boolean {
    const k0 = this.k0;
    let o = 0;
    let e = 0;
    for (let i = 0; i < won.length; i++) {
      o += p[i] * observed(won[i]);
      e += p[i] * expected(won[i]);
    }
    const m = (k0 + o) / (k0 + e);
    let q = 0;
    let count = 0;
    let n = 0;
    let pa = 0;
    let a1 = 0;
    let a2 = 0;
    let atypical = 0;
    // Only creatives with at least one expected event: each rate O/E has variance m/E under
    // Poisson counts, plus τ²m² between creatives.
    for (let i = 0; i < won.length; i++) {
      const E = expected(won[i]);
      if (!(E >= 1)) continue;
      const d = observed(won[i]) - m * E;
      const a = (p[i] * E) / m;
      q += (p[i] * d * d) / (m * E);
      count++;
      n += p[i];
      pa += p[i] * a;
      a1 += a;
      a2 += a * a;
      atypical += 1 - p[i];
    }
    const df = n - pa / a1;
    const c = a1 - a2 / a1;
    // τ² of the rates, relative to m; Q's variance is 2·df with no spread, so the estimate's
    // precision is c²m⁴ / (2·df); the prior's is 1 / TYPICAL_SPREAD². The two are weighed by
    // precision.
    const est = (q - df) / c / (m * m);
    const precision = (c * c * m ** 4) / (2 * df);
    const priorPrecision = 1 / (TYPICAL_SPREAD * TYPICAL_SPREAD);
    const tau2 = Math.max(MIN_SPREAD, (est * precision + TYPICAL_SPREAD * priorPrecision) / (precision + priorPrecision));
    if (!(count >= 2 && df > 0 && c > 0 && m > 0 && Number.isFinite(m) && Number.isFinite(tau2))) return false;
    // The share is the posterior mean of its Beta prior, from the chances under the fit before.
    if (fromFit) this.share = (ATYPICAL_PRIOR[0] + atypical) / (ATYPICAL_PRIOR[0] + ATYPICAL_PRIOR[1] + count);
    this.fitted = true;
    this.centre = m;
    this.tau2 = tau2;
    this.lnGammaEvents = lnGamma(1 / tau2);
    return true;
  }
}
