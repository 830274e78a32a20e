import { creativeFingerprint } from '../features/features.js';
import { utcDay } from '../ledger/budget.js';

class CreativeStats {
  /** Sum of the model's pCTR over the impressions won: the clicks it expected of them. */
  expectedClicks = 0;
  clicks = 0;
  conversions = 0;
  meanPctr = 0;
  meanPcvr = 0;
  seenPctr = 0;
  seenPcvr = 0;
  /** The conversions the model expects of the clicks so far (Σ pCVR); `ages` holds when those clicks came. */
  conversionsOwed = 0;
  /** Its clicks' pCVR by when they came (one priced on a pCVR), past the window excepted. */
  ages: ClickAges | undefined = undefined;
  /** The conversions due, as of `dueAt` under the delay fitted in version `dueFit`. */
  dueValue = 0;
  dueAt = NaN;
  dueFit = -1;
  /** When its first counted click came (a conversion of an earlier click, e.g. before a restart, is not counted against these). */
  firstClickAt = Infinity;
  /** Whether it is among the creatives the spreads are fitted on (it has had an impression). */
  pooled = false;
  /** Its CTR factor, computed under the CTR spread's `ctrVersion` (stale after a fit or a change of its counts). */
  ctrFactor = 1;
  ctrVersion = -1;
  /** Its campaign, as its owner says (none where no catalog or snapshot told it): whose CVR spread prices it. */
  campaign: string | undefined = undefined;
}

/**
 * When the spreads are refitted (a pass over every creative won): after a click or a conversion, or
 * 64 impressions, and at most once a second of the clock, so that a catalog of thousands of
 * creatives costs one pass a second, not one per notice.
 */
const REFIT_EVERY = 64;
const REFIT_MIN_MS = 1000;
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

/**
 * The conversion window where the caller sets none: `conversionWindowMs`'s default
 * (src/config/settings.ts). A conversion token expires that long after its click, so a conversion
 * comes within it or not at all, and a click that old is wholly due: reckoned over another window
 * than the bidder's, a shorter one left clicks owed that could no longer convert, a longer one
 * stopped counting those that still could.
 */
const DEFAULT_WINDOW_MS = 7 * 86_400_000;
const HOUR_MS = 3_600_000;
/** The newest bins of clicks' ages are five minutes of the clock. */
const AGE_BIN_MS = 300_000;

/**
 * The pCVR of clicks by when they came, in few bins (an exponential histogram over time): a click
 * joins the newest bin if it is within that bin's five minutes of the clock, or starts one; whenever
 * one size has three bins, its two oldest merge into one of the next size. A bin thus spans about
 * half its age or less, and a week of steady clicks takes some 22 bins, however many clicks. A bin
 * keeps its clicks' total pCVR and when its first click came; it reaches to the next bin's first
 * click (the newest to the last click), and what is due of it is reckoned as if its clicks were
 * spread evenly over that span. Bins past the conversion window are dropped: their clicks are
 * wholly due, and the owner counts them as its total less the bins.
 */
class ClickAges {
  /** The conversion window: bins past it are dropped. */
  constructor(readonly windowMs: number) {}
  /** Each bin's size (0 for the newest; sizes fall from the oldest bin to the newest). */
  readonly size: number[] = [];
  readonly mass: number[] = [];
  readonly first: number[] = [];
  /** When the last click came. */
  end = -Infinity;

  add(now: number, mass: number): void {
    const n = this.mass.length;
    // A click before the newest bin's first (a clock set back) is taken as at that first.
    const at = n > 0 ? Math.max(now, this.first[n - 1]) : now;
    if (n > 0 && this.size[n - 1] === 0 && Math.floor(this.first[n - 1] / AGE_BIN_MS) === Math.floor(at / AGE_BIN_MS)) this.mass[n - 1] += mass;
    else {
      this.size.push(0);
      this.mass.push(mass);
      this.first.push(at);
      // Each size is one run of bins; `end` is one past the run of `size`.
      let end = n + 1;
      for (let size = 0; ; size++) {
        let start = end;
        while (start > 0 && this.size[start - 1] === size) start--;
        if (end - start < 3) break;
        this.mass[start] += this.mass[start + 1];
        this.size[start] = size + 1;
        for (const a of [this.size, this.mass, this.first]) a.splice(start + 1, 1);
        end = start + 1;
      }
    }
    this.end = Math.max(this.end, at);
    let old = 0;
    while (old < this.mass.length && now - (old + 1 < this.mass.length ? this.first[old + 1] : this.end) >= this.windowMs) old++;
    if (old > 0) for (const a of [this.size, this.mass, this.first]) a.splice(0, old);
  }

  /** The last click's time, then the bins as [size, pCVR, first click] triples, flat (empty without a bin). */
  flat(): number[] {
    return this.mass.length === 0 ? [] : [this.end, ...this.mass.flatMap((m, b) => [this.size[b], m, this.first[b]])];
  }

  /** Bins from `flat()`; null for what is not such a list. */
  static from(values: readonly unknown[], windowMs: number): ClickAges | null {
    const a = new ClickAges(windowMs);
    if (values.length === 0) return a;
    const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
    if (values.length % 3 !== 1 || !num(values[0])) return null;
    a.end = values[0];
    for (let i = 1; i < values.length; i += 3) {
      const [size, mass, first] = values.slice(i, i + 3);
      if (!(Number.isInteger(size) && (size as number) >= 0 && (size as number) <= 64 && (i === 1 || (size as number) <= a.size[a.size.length - 1]))) return null;
      if (!(num(mass) && mass >= 0 && num(first) && first <= a.end && (i === 1 || first >= a.first[a.first.length - 1]))) return null;
      a.size.push(size as number);
      a.mass.push(mass);
      a.first.push(first);
    }
    return a;
  }
}

/**
 * The shapes k the delay's Weibull is fitted over: quarter-octaves from 1/4 (a long tail, as a mix of
 * quick and slow converters) through 1 (exponential) to 64 (a delay of nearly fixed length, within
 * ±2 %). Up to 16 only (±8 %), conversions 6 hours after their clicks read a model right at 0.1 as
 * 0.14 in their first half hour.
 */
const SHAPES = Array.from({ length: 33 }, (_, i) => 2 ** ((i - 8) / 4));
/**
 * Its scales θ: quarter-octaves from a minute to 6.8 days (about the default window), in hours
 * (refined between them). A window of up to 90 days keeps t/θ within J's table (2^17).
 */
const SCALES_H = Array.from({ length: 54 }, (_, j) => (60_000 * 2 ** (j / 4)) / HOUR_MS);
const LN_SHAPES = SHAPES.map(Math.log);
const LN_SCALES = SCALES_H.map(Math.log);

/**
 * J_k(z) = ∫₀^z e^(−s^k) ds for each of SHAPES, tabulated at 32 points an octave of z from 2^−20 to
 * 2^17 (Simpson's rule within each step), so that what is due of a bin of clicks spread over ages
 * [a, b] is exact, θ (J(b/θ) − J(a/θ)) / (b − a) being the mean survival over the bin. Taken at the
 * bin's middle instead, a delay of nearly fixed length counted the clicks of a bin astride it as
 * all due or none.
 */
const J_FROM = -20;
const J_STEPS = 32;
const J_POINTS = (17 - J_FROM) * J_STEPS + 1;
let jTable: Float64Array[] | undefined;
function jTableOf(i: number): Float64Array {
  jTable ??= SHAPES.map((k) => {
    const t = new Float64Array(J_POINTS);
    const e = (s: number) => Math.exp(-(s ** k));
    let z = 2 ** J_FROM;
    t[0] = z * (1 - z ** k / (k + 1));
    for (let n = 1; n < J_POINTS; n++) {
      const next = 2 ** (J_FROM + n / J_STEPS);
      t[n] = t[n - 1] + ((next - z) / 6) * (e(z) + 4 * e((z + next) / 2) + e(next));
      z = next;
    }
    return t;
  });
  return jTable[i];
}
function jOf(t: Float64Array, z: number): number {
  const u = (Math.log2(z) - J_FROM) * J_STEPS;
  if (!(u > 0)) return z;
  if (u >= J_POINTS - 1) return t[J_POINTS - 1];
  const n = Math.floor(u);
  return t[n] + (t[n + 1] - t[n]) * (u - n);
}

/** The prior of the scale: log-normal around `conversionDelayMs`, sd 2 (2 sd from 1 minute to 2 days around 1 h). */
const SCALE_PRIOR_SD = 2;
/** The prior of the shape: log-normal around 1 (exponential), sd 1. */
const SHAPE_PRIOR_SD = 1;
/**
 * In choosing the delay only, the pool's conversions are taken to come at the calibrated rate (each
 * click weighed by its creative's factor when it came) with a prior worth 10 conversions (a Gamma,
 * integrated out): a delay that would make the calibration several times too low needs more than a
 * few conversions to be believed. At the creatives' 3 events, the first half hour of conversions
 * coming 6 hours after their clicks was read as a longer delay and a model right at 0.1 priced at
 * 0.38–0.58; the cost is a model off by half (and quick to convert) learnt in 3 hours rather than 1
 * (docs/pacing-results.md). At 20 conversions centred on the base rate, a creative converting at a
 * tenth of its base (7 conversions of 1,000 clicks, within two hours each) had 34.6 of its 50 owed
 * read as pending, its pCVR 5.4 times its rate; 1.5–2.3 times now, as a Gamma-Poisson with every
 * click due (docs/pacing-history.md, "CPA calibration per campaign").
 */
const FIT_PRIOR_EVENTS = 10;

/**
 * The least share of conversions a delay the fit considers brings within the window, 1 − S(W). With a
 * window of an hour or a few, scales of days and steep shapes make it 1e-6 to 1e-40, and dividing by
 * it turned the rounding of S − S(W) into hundreds of pending conversions (more than the clicks
 * owed): none was ever due, and the creative's pCVR sat at its cap (a review's reproduction: a 1-hour
 * window, conversions spread over it, θ fitted at 20 h with k = 4, the pCVR 1 where 0.2 converted).
 * Not 1e-6: J's table, interpolated linearly in log z, is off by up to (ln 2 / 32)² / 8 = 5.9e-5 of
 * z, and a bin's mean S by up to ~2e-3 (2.9 s bins at θ = 1 h), so under a window of a minute or two
 * the search settled just above 1e-6 (θ 1 h, k 3.36, 1.07e-5 at 120 s) where that error passes all
 * that is due: each bin, clamped to its mass, read wholly pending, and a creative with no conversion
 * kept its model's pCVR. 1e-3 is what a review measured to hold there (100 clicks, none converted,
 * under 120 s and 60 s: pending 9.6 and 13.8 of the 30 owed, pCVR 0.039 and 0.047), not a bound
 * derived from that error.
 * At the 7-day default every scale of the lattice brings at least 63 %.
 */
const MIN_DUE_IN_WINDOW = 1e-3;

/** A Weibull delay of scale θ (hours) and shape SHAPES[i], cut at the window W (hours). */
class Delay {
  readonly k: number;
  /** S(W) = e^(−(W/θ)^k), and 1 − S(W). */
  readonly sW: number;
  readonly fW: number;
  /** The age (hours) past which nothing is left to come: S < e^−40, or the window's. */
  private readonly spent: number;
  private readonly j: Float64Array;
  constructor(
    readonly scaleH: number,
    i: number,
    private readonly windowH: number,
  ) {
    this.k = SHAPES[i];
    const xW = (windowH / scaleH) ** this.k;
    this.sW = Math.exp(-xW);
    this.fW = -Math.expm1(-xW);
    this.spent = Math.min(windowH, scaleH * 40 ** (1 / this.k));
    this.j = jTableOf(i);
  }

  /** ∫₀^t S (t in hours, cut at the window). */
  private survived(t: number): number {
    return this.scaleH * jOf(this.j, Math.min(t, this.windowH) / this.scaleH);
  }

  /**
   * The conversions not yet due at `now` of the clicks binned in `ages`: each bin's pCVR times the
   * mean over its ages of (S(age) − S(W)) / (1 − S(W)), ages past the window adding nothing. Newest
   * first, to the first bin wholly spent; a bin narrower than the table's step (2 % of its age) is
   * taken at its middle. That includes a bin of no width at age 0 (clicks all in the millisecond of
   * `now`, as at the first click of a bin, which refits): its mean is S(0), where the integral's
   * quotient was 0/0, NaN, and every delay of the fit scored NaN.
   */
  pending(ages: ClickAges, now: number): number {
    let p = 0;
    let a = Math.max(0, (now - ages.end) / HOUR_MS);
    let sa = NaN;
    for (let b = ages.mass.length - 1; b >= 0 && a < this.spent; b--) {
      const t = Math.max(a, (now - ages.first[b]) / HOUR_MS);
      let st = NaN;
      // Each bin owes at most its own mass: S − S(W) is at most 1 − S(W) (fW), which rounding
      // could pass where fW is small.
      if (t - a <= 0.02 * t) p += ages.mass[b] * Math.min(this.fW, Math.max(0, Math.exp(-(((a + t) / 2 / this.scaleH) ** this.k)) - this.sW));
      else {
        if (Number.isNaN(sa)) sa = this.survived(a);
        st = this.survived(t);
        p += ages.mass[b] * Math.min(this.fW, Math.max(0, (st - sa - this.sW * (Math.min(t, this.windowH) - Math.min(a, this.windowH))) / (t - a)));
      }
      [a, sa] = [t, st];
    }
    return p / this.fW;
  }
}

/**
 * The click-to-conversion delay, learnt with the conversion rate from every click of a creative
 * priced on a pCVR, converted or not: the delayed-feedback model of Chapelle (2014), with a Weibull
 * delay for its exponential. A click converts with probability c × pCVR, after a delay of survival
 * S(t) = e^(−(t/θ)^k) cut at the conversion window W; by age a it is due the share
 * (1 − S(a)) / (1 − S(W)). The likelihood of what was seen is that of a Poisson process: each
 * conversion that told its click's time adds ln(c pCVR f(delay) / (1 − S(W))), and every click,
 * converted or not, takes away c pCVR × its share due. With c's prior integrated out, (θ, k) is the
 * maximum a posteriori: an octave scan of SCALES_H × SHAPES, climbs to the best neighbour at half and
 * quarter octaves, then θ between its neighbours. The clicks not converted yet are what the plain mean of
 * the delays seen left out: that mean cannot exceed the time elapsed, and with a 6-hour delay it
 * read a right model as converting 2–4 times too little on the first day.
 */
class ConversionDelay {
  /** Every counted click of a creative priced on a pCVR: its pCVR in all (`owed`) and by when. */
  readonly clicks: ClickAges;
  owed = 0;
  /** When the first of them came (a conversion of an earlier click is none of theirs). */
  since = Infinity;
  /** The conversions of those clicks; `timed` told their click's time. */
  converted = 0;
  timed = 0;
  /** Σ ln(delay) and, for each of SHAPES, Σ delay^k, over the timed ones (delays in hours). */
  sumLn = 0;
  readonly sumPow = new Float64Array(SHAPES.length);
  /** The delay fitted, and `version` bumped at each fit. */
  delay: Delay;
  version = 0;
  private readonly lnPrior: number;
  private readonly windowH: number;

  constructor(
    priorScaleMs: number,
    private readonly windowMs: number,
  ) {
    this.clicks = new ClickAges(windowMs);
    this.windowH = windowMs / HOUR_MS;
    this.lnPrior = Math.log(priorScaleMs / HOUR_MS);
    this.delay = new Delay(priorScaleMs / HOUR_MS, 8, this.windowH);
  }

  onClick(now: number, pcvr: number): void {
    this.owed += pcvr;
    this.since = Math.min(this.since, now);
    this.clicks.add(now, pcvr);
  }

  /** A conversion at `now` of a creative it holds clicks of, of a click at `clickMs` when the notice tells. */
  onConversion(now: number, clickMs?: number): void {
    if (clickMs !== undefined && clickMs < this.since) return;
    this.converted++;
    const delayMs = now - (clickMs ?? NaN);
    if (!(delayMs >= 0)) return;
    this.timed++;
    const ln = Math.log(Math.min(Math.max(delayMs, 1000), this.windowMs) / HOUR_MS);
    this.sumLn += ln;
    for (let i = 0; i < SHAPES.length; i++) this.sumPow[i] += Math.exp(SHAPES[i] * ln);
  }

  /** Fits θ and k on the clicks and conversions so far, as of `now`. */
  fit(now: number): void {
    const N = this.timed;
    // The Gamma prior of the rate of timed conversions: mean the timed share (the model's rate, less
    // the conversions that will not tell their delay). Without any timed one, but conversions, no
    // count says anything of the delay: the prior alone.
    const counts = N > 0 || this.converted === 0;
    const rate = N > 0 ? (FIT_PRIOR_EVENTS * this.converted) / N : FIT_PRIOR_EVENTS;
    const score = (i: number, lnTh: number): number => {
      const k = SHAPES[i];
      let s = -0.5 * ((lnTh - this.lnPrior) / SCALE_PRIOR_SD) ** 2 - 0.5 * (LN_SHAPES[i] / SHAPE_PRIOR_SD) ** 2;
      if (!counts) return s;
      const d = new Delay(Math.exp(lnTh), i, this.windowH);
      // A delay that almost never ends within the window (a scale far past a short window): what it
      // leaves pending is S − S(W) over 1 − S(W), the quotient J's error and rounding's (MIN_DUE_IN_WINDOW).
      if (d.fW < MIN_DUE_IN_WINDOW) return -Infinity;
      s -= (FIT_PRIOR_EVENTS + N) * Math.log(rate + Math.max(0, this.owed - d.pending(this.clicks, now)));
      if (N > 0) s += N * (LN_SHAPES[i] - k * lnTh - Math.log(d.fW)) + (k - 1) * this.sumLn - Math.exp(-k * lnTh) * this.sumPow[i];
      return s;
    };
    // An octave scan, then climbs to the best neighbour at half and quarter octaves.
    let bj = 0;
    let bi = 0;
    let best = -Infinity;
    for (let j = 0; j < SCALES_H.length; j += 4) {
      for (let i = 0; i < SHAPES.length; i += 4) {
        const v = score(i, LN_SCALES[j]);
        if (v > best) [best, bj, bi] = [v, j, i];
      }
    }
    for (const step of [2, 1]) {
      for (;;) {
        let [nj, ni] = [bj, bi];
        for (let j = bj - step; j <= bj + step; j += step) {
          for (let i = bi - step; i <= bi + step; i += step) {
            if (j < 0 || j >= SCALES_H.length || i < 0 || i >= SHAPES.length || (j === bj && i === bi)) continue;
            const v = score(i, LN_SCALES[j]);
            if (v > best) [best, nj, ni] = [v, j, i];
          }
        }
        if (nj === bj && ni === bi) break;
        [bj, bi] = [nj, ni];
      }
    }
    // No delay scored a number: the lattice's first (a 1-minute scale, the longest tail) would be
    // taken for want of any, so the delay fitted before stays.
    if (best === -Infinity) return;
    // θ between its lattice neighbours (golden section on ln θ).
    let lo = LN_SCALES[Math.max(0, bj - 1)];
    let hi = LN_SCALES[Math.min(SCALES_H.length - 1, bj + 1)];
    const g = (Math.sqrt(5) - 1) / 2;
    let x1 = hi - g * (hi - lo);
    let x2 = lo + g * (hi - lo);
    let f1 = score(bi, x1);
    let f2 = score(bi, x2);
    for (let step = 0; step < 12; step++) {
      if (f1 >= f2) {
        [hi, x2, f2] = [x2, x1, f1];
        x1 = hi - g * (hi - lo);
        f1 = score(bi, x1);
      } else {
        [lo, x1, f1] = [x1, x2, f2];
        x2 = lo + g * (hi - lo);
        f2 = score(bi, x2);
      }
    }
    const lnScale = Math.max(f1, f2) > best ? (f1 >= f2 ? x1 : x2) : LN_SCALES[bj];
    this.delay = new Delay(Math.exp(lnScale), bi, this.windowH);
    this.version++;
  }

  snapshot(): ConversionDelaySnapshot {
    return { clicks: this.clicks.flat(), owed: this.owed, since: Number.isFinite(this.since) ? this.since : null, converted: this.converted, timed: this.timed, sumLn: this.sumLn, sumPow: Array.from(this.sumPow) };
  }

  /** Takes back a snapshot; false (changing nothing) for what is not one. */
  restore(x: Partial<ConversionDelaySnapshot>): boolean {
    const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
    const clicks = Array.isArray(x.clicks) ? ClickAges.from(x.clicks, this.windowMs) : null;
    const ok =
      clicks !== null &&
      num(x.owed) &&
      x.owed >= 0 &&
      (x.since === null || num(x.since)) &&
      Number.isInteger(x.converted) &&
      x.converted! >= 0 &&
      Number.isInteger(x.timed) &&
      x.timed! >= 0 &&
      x.timed! <= x.converted! &&
      num(x.sumLn) &&
      Array.isArray(x.sumPow) &&
      x.sumPow.length === SHAPES.length &&
      x.sumPow.every((v) => num(v) && v >= 0);
    if (!ok) return false;
    for (const k of ['size', 'mass', 'first'] as const) this.clicks[k].splice(0, Infinity, ...clicks[k]);
    this.clicks.end = clicks.end;
    this.owed = x.owed!;
    this.since = x.since ?? Infinity;
    this.converted = x.converted!;
    this.timed = x.timed!;
    this.sumLn = x.sumLn!;
    this.sumPow.set(x.sumPow!);
    return true;
  }
}

/** What the delay has learnt (see ConversionDelay). */
export interface ConversionDelaySnapshot {
  /** The clicks' bins: the last click's time, then [size, pCVR, first click] flat. */
  clicks: number[];
  owed: number;
  since: number | null;
  converted: number;
  timed: number;
  sumLn: number;
  sumPow: number[];
}

/**
 * A creative's fields in a snapshot, in this order (firstClickAt null while Infinity), then its
 * clicks' bins (ClickAges.flat). `pending` is what its clicks owed not due yet as of `pendingAt`,
 * written for the reader and not read back: the bins say it.
 */
/** A creative's click side under one model: clicks, expectedClicks, meanPctr, seenPctr. */
type ClickCounts = [number, number, number, number];

const FIELDS = ['expectedClicks', 'clicks', 'conversions', 'meanPctr', 'meanPcvr', 'seenPctr', 'seenPcvr', 'conversionsOwed', 'pending', 'pendingAt', 'firstClickAt'] as const;

/** What calibration has learnt: the click-to-conversion delay, and per creative its FIELDS and clicks' bins. */
export interface CalibrationSnapshot {
  conversionDelay?: ConversionDelaySnapshot;
  /**
   * Before 2026-12, instead: the delays' sum and count (1 h × 10 of prior in them). Checked, not
   * used: the delay is learnt again, and those creatives' clicks are taken as due.
   */
  delay?: [number, number];
  creatives: Array<[string, ...Array<number | null>]>;
  /** The creatives no campaign lists, with when a reload first found them so (absent before 2026-12). */
  removed?: Array<[string, number]>;
  /**
   * Whose each creative's counts are: [creative id, campaign id, fingerprint]. Absent before
   * 2026-12, and for a creative learnt before any catalog was known: its counts are taken as the
   * first catalog's creative of that id.
   */
  owners?: Array<[string, string, string]>;
  /** The version of the CTR model the clicks were expected by (absent before 2026-12-07, or before a model was told). */
  ctrModel?: string;
}

/** What `keepCreativesOf` reads of a creative: its id, and the fields of its fingerprint the caller has. */
export interface CatalogCreative {
  id: string;
  title?: string;
  keywords?: readonly string[];
  imageEmbedding?: readonly number[];
}

/** What `keepCreativesOf` needs of a campaign: its id and categories, and its creatives when the caller knows them. */
export interface CatalogCampaign {
  id: string;
  cat?: readonly string[];
  creatives?: readonly CatalogCreative[];
}

/**
 * The creative a creative id's counts were learnt of: its campaign and what its fingerprint reads
 * (src/features/features.ts). The fingerprint (a JSON text hashed) is taken only where a snapshot
 * needs it, once per owner: at every reload, of every listed creative, it held the loop for
 * 70-120 ms at 10,000 creatives and 1.2-2 s at 100,000 (a review of 8d8156a); owners are compared
 * field by field instead. One restored from a snapshot has its fingerprint alone.
 */
interface Owner {
  campaign: string;
  /** What the fingerprint reads of the creative (not the creative itself: a reload's objects are not kept past it). */
  creative?: { id: string; title?: string; keywords?: readonly string[]; imageEmbedding?: readonly number[] };
  cat?: readonly string[];
  fingerprint?: string;
}

function fingerprintOf(o: Owner): string {
  if (o.fingerprint === undefined) {
    const cr = o.creative!;
    o.fingerprint = creativeFingerprint({ id: cr.id, campaignId: o.campaign, title: cr.title, keywords: cr.keywords, imageEmbedding: cr.imageEmbedding }, { cat: o.cat });
  }
  return o.fingerprint;
}

function sameList<T>(a: readonly T[] | undefined, b: readonly T[] | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether two owners are one creative as its fingerprint reads it. */
function sameOwner(was: Owner, now: Owner): boolean {
  if (was.campaign !== now.campaign) return false;
  if (was.creative === undefined || now.creative === undefined) return fingerprintOf(was) === fingerprintOf(now);
  const a = was.creative;
  const b = now.creative;
  return a.title === b.title && sameList(a.keywords, b.keywords) && sameList(a.imageEmbedding, b.imageEmbedding) && sameList(was.cat, now.cat);
}

export interface CalibrationOptions {
  /** Pseudo-events of each creative's prior (mean 1: the model as it is), default 3. */
  priorEvents?: number;
  /** What the conversions due are reckoned against. */
  clock: () => number;
  /**
   * The delay from a click to its conversion assumed until conversions say otherwise, ms: the centre
   * of the prior of the delay's scale (default 1 h; see ConversionDelay).
   */
  conversionDelayMs?: number;
  /**
   * How long after its click a conversion still counts, ms: the bidder's `conversionWindowMs`, past
   * which a click's conversion token has expired (default 7 days).
   */
  conversionWindowMs?: number;
}

/**
 * Each creative's CTR (and CVR) calibration: the model's probability times the posterior mean of
 * observed events against those the model expected on the same trials (Gamma-Poisson, prior mean
 * 1 worth `priorEvents` events). Few trials: the model as it is; many: the model, corrected by
 * what was seen. Shared by every pacer.
 *
 * Conversions come hours or days after their click, so the conversions expected so far count
 * each click by the share of its conversion due by its age, under the click-to-conversion delay
 * learnt from every click and conversion of the creatives priced on a pCVR (ConversionDelay; a
 * conversion notice carries its click's time). Each creative keeps its clicks' ages in a few bins
 * (ClickAges). Counting every click at once would read a creative as converting less than the model
 * says for as long as conversions are pending: a quarter less at the end of a day of steady clicks
 * with a 6-hour delay (test/pace.test.ts).
 *
 * How far one creative may stand from the others is learnt too (empirical Bayes). Once two
 * creatives have an expected event each, the prior of a creative's factor is centred on the pooled
 * rate (Σ observed / Σ expected over the creatives won, shrunk toward the model by `priorEvents`),
 * and its strength is 1 / τ² events, τ² being the creatives' relative spread beyond what Poisson
 * counts explain (DerSimonian–Laird over the creatives with at least one expected event), weighed
 * against the default spread 1 / `priorEvents` by the precision of each. A model that is right creative by creative (the oracle of
 * the simulator) thus stops reading each creative's few clicks as its calibration: with CTRs of a
 * few per mille, 3 prior events let a creative's factor wander ±50 % on chance alone, and the value
 * pacer bought 0.4–2.2 % fewer expected clicks on the iPinYou-calibrated market for it. A model that
 * is off creative by creative shows a spread and keeps learning each one quickly. One creative off
 * among many right ones is not held to them: the prior mixes the spread's Gamma with the weak one
 * of `priorEvents` events, for a learnt share of creatives unlike the others (Spread). With one creative
 * (or before any has an expected event) it is the prior of `priorEvents` events around the model,
 * as before. The CTR's spread is fitted over every creative (one model's error); the CVR's over
 * each campaign's creatives apart (the pCVR is the campaign's base rate, not a model's: `cvrSpreads`),
 * and a creative whose campaign no catalog told is calibrated alone.
 *
 * The mean, not a Thompson draw: a draw (per auction, or per creative and slot) puts noise on every
 * bid while the posterior is wide, and with CTRs of a few per mille it stays wide all day. It bought
 * nothing in return: a won impression reports its click or its absence whatever was drawn. Priced
 * on a draw, the value pacer bought 3 % fewer clicks in the demo simulator and 6–7 % fewer in the
 * iPinYou-calibrated one (docs/pacing-results.md).
 */
export function createCalibration(opts: CalibrationOptions) {
  const priorEvents = opts.priorEvents ?? 3;
  const { clock } = opts;
  const priorDelayMs = opts.conversionDelayMs ?? HOUR_MS;
  const windowMs = opts.conversionWindowMs ?? DEFAULT_WINDOW_MS;
  if (!(windowMs > 0)) throw new Error('conversionWindowMs must be > 0');
  const delay = new ConversionDelay(priorDelayMs, windowMs);
  const creatives = new Map<string, CreativeStats>();
  /**
   * The creatives no campaign lists, since when (epoch ms). Kept to the end of the UTC day after
   * that, as a removed creative's landing page is kept a day (src/live/live.ts): its clicks and
   * conversions still come, and one added back soon keeps what it learnt. Never pruned before,
   * every reload that replaced creatives left theirs for good: 200 reloads of 20 creatives, 4,000
   * entries in learned.json and about 1 KB of heap each.
   */
  const removedAt = new Map<string, number>();
  /**
   * Whose each creative id's counts are, from the catalogs `keepCreativesOf` is given. A creative id
   * is the operator's name, which a new campaign may reuse once the old one is removed (and which
   * would be listed again at once, clearing its removal): keyed by the id alone, the new campaign's
   * ad was priced on the old ad's clicks (30 wins and clicks of the old one: a first bid of 50, the
   * cap, where a new id bid 18.40). A creative whose campaign or fingerprint changes at a reload
   * starts again from the model, as training leaves out a changed creative's earlier rows.
   */
  const owners = new Map<string, Owner>();
  /** Whether a notice of `campaignId` is of the creative the id's counts are now learnt of (not of a campaign that had the id before a reload). */
  function ownedBy(creativeId: string, campaignId: string | undefined): boolean {
    if (campaignId === undefined) return true;
    const o = owners.get(creativeId);
    return o === undefined || o.campaign === campaignId;
  }
  /**
   * The conversions due by `now` of what the creative's clicks owe. Kept for the millisecond and the
   * fit it was computed on: a busy bid path asks for the same creative many times a millisecond.
   */
  function due(s: CreativeStats, now: number): number {
    if (s.ages === undefined) return s.conversionsOwed;
    if (s.dueAt !== now || s.dueFit !== delay.version) {
      s.dueValue = Math.max(0, s.conversionsOwed - delay.delay.pending(s.ages, now));
      s.dueAt = now;
      s.dueFit = delay.version;
    }
    return s.dueValue;
  }
  function creative(id: string): CreativeStats {
    let s = creatives.get(id);
    if (s === undefined) {
      s = new CreativeStats();
      s.campaign = owners.get(id)?.campaign;
      creatives.set(id, s);
    }
    return s;
  }
  const ctr = new Spread(priorEvents);
  /**
   * The version of the CTR model whose pCTRs the expected clicks sum (`useCtrModel`). A factor is
   * clicks per click that model expected: applied to another model's pCTR, already at another
   * level, it corrected that one by the first one's error. Swapped from an lr-v5 expecting 1 / 0.785
   * of the clicks to a recalibrated lr-v5-cal, the bidder bid 0.757 × its price at the same pCTR
   * (review "learn", 2026-12-07).
   */
  let ctrModel: string | undefined;
  /** The click counts of the version served before `ctrModel`, by creative, for a swap put back. */
  let setAside: { version: string; counts: Map<string, ClickCounts> } | undefined;
  /**
   * The counts an impression or a click of a creative's bid that `model` priced goes to where they
   * are not its own, the model serving's (undefined: that model's bid, or one whose model is not
   * known, a notice of a bid this process does not remember, docs/pacing.md): the version left's
   * set aside, so that a swap put back has them; null: none (an older version's, whose counts are
   * gone). Counted under the model serving, a bid made before a swap and won after it added the
   * old model's pCTR to the clicks the new one expects (win notices sent in hourly batches had the
   * factor at 0.48 of right an hour after a swap).
   */
  function asideFor(creativeId: string, model: string | undefined): ClickCounts | null | undefined {
    if (model === undefined || ctrModel === undefined || model === ctrModel) return undefined;
    return (setAside?.version === model ? setAside.counts.get(creativeId) : undefined) ?? null;
  }
  /** These creatives' CTR back to its prior (the model as it is); their conversions are not the model's and are kept. */
  function forgetClicks(of: Iterable<CreativeStats>): void {
    for (const s of of) {
      s.clicks = 0;
      s.expectedClicks = 0;
      s.seenPctr = 0;
      s.ctrVersion = -1;
    }
  }
  /**
   * The CVR's spreads, one per campaign, fitted on its creatives priced on a pCVR. The CTR model is
   * one model, so its error is pooled over every creative; a pCVR is a campaign's base rate (its
   * configured `goal.cvr`, else one constant), so pooled over every campaign its correction was
   * every advertiser's rate: a new campaign converting at 0.5 % beside one at 30 % was priced at
   * 0.308 with none of its own clicks (docs/pacing-history.md, "CPA calibration per campaign").
   * A campaign's creatives share a conversion process (its landing page, its offer), so a new
   * creative starts at its campaign's rate.
   */
  const cvrSpreads = new Map<string, Spread>();
  /**
   * The factor of a creative alone: its own counts around its base, `priorEvents` events (never
   * fitted). It is also what a spread that could not be fitted gives (fewer than two creatives
   * expecting a conversion), so such a campaign keeps no spread of its own.
   */
  const alone = new Spread(priorEvents);
  /** Creatives with an impression, the only ones the spreads are fitted on. */
  const won: CreativeStats[] = [];
  /**
   * The creatives won of each known campaign, kept as owners and first impressions come rather than
   * sorted out at each refit: walking every creative and building each campaign's list at every
   * refit cost 18-20 ms a refit at 10,000 creatives in 2,000 campaigns where one pooled fit cost
   * 2.1-2.4 ms, and refits come once a second.
   */
  const members = new Map<string, CreativeStats[]>();
  function join(s: CreativeStats): void {
    if (s.campaign === undefined) return;
    const group = members.get(s.campaign);
    if (group === undefined) members.set(s.campaign, [s]);
    else group.push(s);
  }
  /** After owners change (a reload, a restore): each creative's campaign, and the campaigns' lists. */
  function regroup(): void {
    members.clear();
    for (const [id, s] of creatives) {
      s.campaign = owners.get(id)?.campaign;
      if (s.pooled) join(s);
    }
  }
  let sinceFit = 0;
  let eventSinceFit = false;
  let fitAt = -Infinity;
  function refit(): void {
    sinceFit = 0;
    eventSinceFit = false;
    const now = clock();
    fitAt = now;
    delay.fit(now);
    ctr.fit(won, (s) => s.clicks, (s) => s.expectedClicks);
    // Only creatives priced on a pCVR (a CPC creative's conversions were expected by no model), by
    // campaign; one whose campaign no catalog told stays alone. A campaign without two creatives
    // expecting a conversion is not fitted (the fit would give up and leave `alone`'s prior): most
    // campaigns of a large catalog, each a fit's passes and allocations saved.
    for (const id of cvrSpreads.keys()) if (!members.has(id)) cvrSpreads.delete(id);
    for (const [id, group] of members) fitCampaign(id, group, now);
  }
  function fitCampaign(id: string, group: readonly CreativeStats[], now: number): void {
    let expecting = 0;
    let priced = 0;
    for (let i = 0; i < group.length; i++) {
      const s = group[i];
      if (!(s.seenPcvr > 0)) continue;
      priced++;
      if (due(s, now) >= 1) expecting++;
    }
    if (expecting < 2) {
      cvrSpreads.delete(id);
      return;
    }
    let spread = cvrSpreads.get(id);
    if (spread === undefined) cvrSpreads.set(id, (spread = new Spread(priorEvents)));
    spread.fit(priced === group.length ? group : group.filter((s) => s.seenPcvr > 0), (s) => s.conversions, (s) => due(s, now));
  }
  /**
   * A creative's CVR factor: under its campaign's spread, which a creative not won yet (not among
   * those fitted) takes too, so that it starts at its campaign's rate; alone where no campaign is
   * known or its campaign could not be fitted.
   */
  function cvrFactor(s: CreativeStats, now: number, scale = 1): number {
    const spread = (s.campaign === undefined ? undefined : cvrSpreads.get(s.campaign)) ?? alone;
    return spread.factor(s.conversions, due(s, now), scale);
  }
  /** How many times its base pCVR `rate` is the one a creative's clicks owe at, where more than 1 % off (else 1). */
  function rebased(s: CreativeStats, rate: number): number {
    const scale = rate / s.meanPcvr;
    return s.meanPcvr > 0 && Math.abs(scale - 1) > 0.01 ? scale : 1;
  }
  /** Takes what a creative's clicks owe at its base pCVR `rate`. */
  function rebase(s: CreativeStats, rate: number): void {
    const scale = rebased(s, rate);
    if (scale === 1) return;
    s.conversionsOwed *= scale;
    if (s.ages !== undefined) for (let i = 0; i < s.ages.mass.length; i++) s.ages.mass[i] *= scale;
    s.meanPcvr = rate;
    s.dueAt = NaN;
  }
  /** Refits when one is due and the last is a second old (or in the future: a clock set back). */
  function maybeRefit(): void {
    if (!(eventSinceFit || sinceFit >= REFIT_EVERY)) return;
    const now = clock();
    if (now - fitAt >= REFIT_MIN_MS || now < fitAt) refit();
  }
  return {
    calibratePctr(creativeId: string, modelPctr: number, learn = true): number {
      const s = creative(creativeId);
      if (learn) {
        s.seenPctr++;
        s.meanPctr += (modelPctr - s.meanPctr) / Math.min(s.seenPctr, 10_000);
      }
      if (s.ctrVersion !== ctr.version) {
        s.ctrFactor = ctr.factor(s.clicks, s.expectedClicks);
        s.ctrVersion = ctr.version;
      }
      return Math.min(1, modelPctr * s.ctrFactor);
    },
    calibratePcvr(creativeId: string, modelPcvr: number, learn = true): number {
      const s = creative(creativeId);
      // The pCVR is its campaign's base rate, changed only by the operator (goal.cvr, at a reload or
      // across a restart). The factor is conversions per conversion owed at the rate in force when
      // each click came; left at the old rate, a new base was corrected by the old one's error a
      // second time: a campaign converting at 30 %, learnt on 0.05, then set to 0.30, was priced at
      // 1.0 (the cap) for its next 1,000 clicks. What its campaign's clicks owe is taken at the new
      // base, and its spread refitted on that (that campaign's alone: this is the bid path); a test
      // request, which teaches nothing, is priced as that would price it.
      if (!learn) return Math.min(1, modelPcvr * cvrFactor(s, clock(), rebased(s, modelPcvr)));
      if (rebased(s, modelPcvr) !== 1) {
        rebase(s, modelPcvr);
        const group = s.campaign === undefined ? undefined : members.get(s.campaign);
        if (group !== undefined) {
          for (const m of group) rebase(m, modelPcvr);
          fitCampaign(s.campaign!, group, clock());
        }
      }
      s.seenPcvr++;
      s.meanPcvr += (modelPcvr - s.meanPcvr) / Math.min(s.seenPcvr, 10_000);
      return Math.min(1, modelPcvr * cvrFactor(s, clock()));
    },
    /**
     * An impression won, with the model's pCTR it was bid on. The clicks to expect are those of the
     * impressions won, not the mean over every opportunity: bids rise with pCTR, so what is won is
     * the high-pCTR part, and the mean would read the model as too pessimistic (and the creative's
     * CTR as higher than it is). Without the pCTR (a notice whose bid is no longer known), the mean.
     * `model`: the version of the CTR model that priced the bid, where known (`asideFor`).
     */
    onImpression(creativeId: string, modelPctr?: number, campaignId?: string, model?: string): void {
      const s = creatives.get(creativeId);
      if (s === undefined || !ownedBy(creativeId, campaignId)) return;
      if (!s.pooled) {
        s.pooled = true;
        won.push(s);
        join(s);
      }
      const pctr = modelPctr !== undefined && modelPctr >= 0 && modelPctr <= 1 ? modelPctr : undefined;
      const aside = asideFor(creativeId, model);
      if (aside !== undefined) {
        if (aside !== null) aside[1] += pctr ?? aside[2];
        return;
      }
      s.expectedClicks += pctr ?? s.meanPctr;
      s.ctrVersion = -1;
      sinceFit++;
      maybeRefit();
    },
    /**
     * A click on a won impression; `model` as `onImpression`'s. Its conversions are owed whatever the
     * model (the conversion side is no model's).
     */
    onClick(creativeId: string, campaignId?: string, model?: string): void {
      const s = creatives.get(creativeId);
      if (s === undefined || !ownedBy(creativeId, campaignId)) return;
      const aside = asideFor(creativeId, model);
      if (aside === undefined) {
        s.clicks++;
        s.ctrVersion = -1;
      } else if (aside !== null) aside[0]++;
      const now = clock();
      if (s.firstClickAt === Infinity) s.firstClickAt = now;
      if (s.meanPcvr > 0) {
        s.conversionsOwed += s.meanPcvr;
        (s.ages ??= new ClickAges(windowMs)).add(now, s.meanPcvr);
        s.dueAt = NaN;
        // The delay's rate prior is centred on the creative's calibrated rate, not on its base: a
        // creative converting far below its base otherwise had its shortfall read as conversions
        // still to come (a long-tailed delay) for a day of clicks.
        delay.onClick(now, s.meanPcvr * cvrFactor(s, now));
      }
      eventSinceFit = true;
      maybeRefit();
    },
    /**
     * At a reload: creatives in none of the campaigns are marked removed, and those removed before
     * yesterday (UTC) are dropped, with the spreads refitted without them. A creative listed under
     * another campaign or fingerprint than its counts were learnt of is dropped too (`owners`).
     * Nothing is marked when a campaign does not list its creatives (a caller that does not know them).
     */
    keepCreativesOf(campaigns: readonly CatalogCampaign[]): void {
      const listed = new Map<string, Owner>();
      for (const c of campaigns) {
        if (c.creatives === undefined) return;
        for (const cr of c.creatives) listed.set(cr.id, { campaign: c.id, creative: { id: cr.id, title: cr.title, keywords: cr.keywords, imageEmbedding: cr.imageEmbedding }, cat: c.cat });
      }
      const now = clock();
      const dropped = new Set<CreativeStats>();
      const drop = (id: string, s: CreativeStats) => {
        creatives.delete(id);
        removedAt.delete(id);
        if (s.pooled) dropped.add(s);
      };
      for (const [id, s] of creatives) {
        const owner = listed.get(id);
        if (owner !== undefined) {
          removedAt.delete(id);
          const was = owners.get(id);
          if (was !== undefined && !sameOwner(was, owner)) drop(id, s);
          continue;
        }
        const at = removedAt.get(id);
        if (at === undefined) removedAt.set(id, now);
        else if (utcDay(now) > utcDay(at) + 1) drop(id, s);
      }
      // A removed creative keeps its owner while its counts are kept: added back by its campaign, it keeps them.
      for (const id of owners.keys()) if (!listed.has(id) && !creatives.has(id)) owners.delete(id);
      // An owner unchanged stays the one in place, with its fingerprint if a snapshot took it.
      for (const [id, owner] of listed) {
        const was = owners.get(id);
        if (was === undefined || was.creative === undefined || !sameOwner(was, owner)) owners.set(id, owner);
      }
      if (dropped.size > 0) {
        let n = 0;
        for (const s of won) if (!dropped.has(s)) won[n++] = s;
        won.length = n;
      }
      regroup();
      if (dropped.size > 0) refit();
    },

    snapshot(): CalibrationSnapshot {
      const now = clock();
      const field = (c: CreativeStats, f: (typeof FIELDS)[number]): number | null => {
        const v = f === 'pending' ? c.conversionsOwed - due(c, now) : f === 'pendingAt' ? now : c[f];
        return Number.isFinite(v) ? v : null;
      };
      return {
        conversionDelay: delay.snapshot(),
        creatives: [...creatives].map(([id, c]) => [id, ...FIELDS.map((f) => field(c, f)), ...(c.ages?.flat() ?? [])]),
        removed: [...removedAt],
        ...(ctrModel === undefined ? {} : { ctrModel }),
        owners: [...creatives.keys()].flatMap((id) => {
          const o = owners.get(id);
          return o === undefined ? [] : [[id, o.campaign, fingerprintOf(o)] as [string, string, string]];
        }),
      };
    },

    /** Takes back a snapshot; throws on one that is not a snapshot, changing nothing. */
    restore(snap: unknown): void {
      const x = snap as Partial<CalibrationSnapshot> | null;
      const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
      const n = FIELDS.length;
      const ages = new Map<unknown, ClickAges | null>();
      const ok =
        x !== null &&
        typeof x === 'object' &&
        (x.delay !== undefined || x.conversionDelay !== undefined) &&
        (x.delay === undefined || (Array.isArray(x.delay) && x.delay.length === 2 && x.delay.every(num) && x.delay[1] > 0)) &&
        Array.isArray(x.creatives) &&
        x.creatives.every((c) => {
          if (!(Array.isArray(c) && c.length > n && typeof c[0] === 'string' && c.slice(1, n).every(num) && (c[n] === null || num(c[n])))) return false;
          ages.set(c, ClickAges.from(c.slice(n + 1), windowMs));
          return ages.get(c) !== null;
        }) &&
        (x.removed === undefined || (Array.isArray(x.removed) && x.removed.every((r) => Array.isArray(r) && r.length === 2 && typeof r[0] === 'string' && num(r[1])))) &&
        (x.owners === undefined || (Array.isArray(x.owners) && x.owners.every((r) => Array.isArray(r) && r.length === 3 && r.every((v) => typeof v === 'string')))) &&
        (x.ctrModel === undefined || typeof x.ctrModel === 'string');
      if (!ok || (x.conversionDelay !== undefined && !new ConversionDelay(priorDelayMs, windowMs).restore(x.conversionDelay))) throw new Error('not a calibration snapshot');
      // A creative of a snapshot of before 2026-12 has no bins: what its clicks owed then is taken as
      // due (its last hours' clicks read as a little late), and the delay is learnt again from the
      // clicks and conversions to come.
      for (const row of x.creatives!) {
        const [id, ...values] = row;
        const c = new CreativeStats();
        FIELDS.forEach((f, i) => {
          if (f !== 'pending' && f !== 'pendingAt') c[f] = values[i] ?? Infinity;
        });
        const bins = ages.get(row)!;
        if (bins.mass.length > 0) c.ages = bins;
        creatives.set(id, c);
        // Whose the counts are comes from the snapshot: the catalog's creative of that id may be another's.
        owners.delete(id);
      }
      for (const [id, campaign, fingerprint] of x!.owners ?? []) if (creatives.has(id)) owners.set(id, { campaign, fingerprint });
      if (x.conversionDelay !== undefined) delay.restore(x.conversionDelay);
      // Removed before the restart: they go when they would have.
      for (const [id, at] of x!.removed ?? []) if (creatives.has(id)) removedAt.set(id, at);
      won.length = 0;
      for (const c of creatives.values()) {
        c.pooled = c.expectedClicks > 0 || c.clicks > 0;
        if (c.pooled) won.push(c);
      }
      // Learnt under another model than the one serving: not this one's clicks (forgotten once pooled,
      // so that their conversions stay in their campaign's spread). A snapshot that does not say
      // (older) is taken as of the model serving.
      if (x.ctrModel !== undefined) {
        if (ctrModel !== undefined && x.ctrModel !== ctrModel) forgetClicks(x.creatives!.map(([id]) => creatives.get(id)!));
        else ctrModel = x.ctrModel;
      }
      regroup();
      refit();
    },

    /**
     * The CTR model serving from now, by version: one other than the model the clicks were expected
     * by puts every creative's CTR back to its prior (`ctrModel`). The same version loaded again keeps them.
     */
    useCtrModel(version: string): void {
      if (ctrModel !== undefined && ctrModel !== version) {
        // The counts of the version left are kept aside: a swap the other workers refused is put
        // back (v1, v2, v1 in a few milliseconds), as is an operator's rollback, and either wiped
        // what v1 had learnt, pricing every creative on the raw model (fix review fixrev5).
        const back = setAside?.version === version ? setAside.counts : undefined;
        const counts = new Map<string, ClickCounts>();
        for (const [id, s] of creatives) counts.set(id, [s.clicks, s.expectedClicks, s.meanPctr, s.seenPctr]);
        setAside = { version: ctrModel, counts };
        forgetClicks(creatives.values());
        if (back !== undefined) {
          for (const [id, c] of back) {
            const s = creatives.get(id);
            if (s !== undefined) [s.clicks, s.expectedClicks, s.meanPctr, s.seenPctr] = c;
          }
        }
        ctr.fit(won, (s) => s.clicks, (s) => s.expectedClicks);
      }
      ctrModel = version;
    },

    /**
     * A conversion; with its click's time when the notice tells it (it teaches the delay). Only a
     * conversion of a creative priced on a pCVR teaches it: its clicks are the ones the delay
     * reckons with, converted or not (a CPC creative's clicks are not, and its conversions alone
     * would read the delay short, as the conversions alone always did).
     */
    onConversion(creativeId: string, clickMs?: number, campaignId?: string): void {
      if (!ownedBy(creativeId, campaignId)) return;
      const s = creatives.get(creativeId);
      if (s !== undefined && !(clickMs !== undefined && clickMs < s.firstClickAt)) {
        s.conversions++;
        if (s.conversionsOwed > 0) delay.onConversion(clock(), clickMs);
      }
      eventSinceFit = true;
      maybeRefit();
    },
  };
}

export type Calibration = ReturnType<typeof createCalibration>;
