/**
 * The click-to-conversion delay model of the calibration (src/pace/calibration.ts): a creative's
 * clicks binned by when they came (ClickAges), the Weibull delay over a lattice of shapes and scales
 * with its tabulated integrals J (jTableOf, jOf), the delay cut at the conversion window and what it
 * leaves pending (Delay), and the fit of its scale and shape on every click and conversion
 * (ConversionDelay), with what a snapshot keeps of it (ConversionDelaySnapshot).
 */

export const HOUR_MS = 3_600_000;
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
export class ClickAges {
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
export class ConversionDelay {
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
