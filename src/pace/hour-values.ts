/**
 * Time-of-day value: what the opportunities of each UTC hour are worth against the campaign's day
 * as a whole, and the rest of the day's value distribution the value pacer plans on with it.
 *
 * The pacer's recent value histogram (landscape.ts, `ValueHistogram`) follows the market within
 * hours, but it is a mix of the last hours only: where the valuable opportunities come at one time
 * of day (CTR peaks in the evening), the morning planned the whole rest of the day on the morning's
 * low values, lowered λ to spend on them and ran out before the evening (derived iPinYou logs, top
 * 15 % pCTR at 75-95 % of the day: 0.68-0.87 of the knapsack bound). Values are taken as an hour's
 * level and spread applied to the market's recent shape, in log: each hour has a learnt mean and
 * standard deviation of ln(value); the histogram learns each value standardised by its hour's
 * (the shape, whatever hours it came in), and each remaining hour's share of the plan is that
 * shape given the hour's mean and spread back. A market without time-of-day value learns the same
 * mean and spread for every hour (exactly, once noise is shrunk away) and plans as before.
 */
import { BINS, binTop, BINS_PER_DECADE } from './landscape.js';

/** Fewest (weighted) opportunities an hour needs for its fit to count at all. */
const MIN_HOUR_WEIGHT = 4;
/** Values at or under the grid's floor (bin 0: iPinYou's pCTR of 0) are left as they are. */
const FLOOR = binTop(0);
const LOG_MIN = Math.log(FLOOR);
const STEP = Math.log(10) / BINS_PER_DECADE;
const MOMENTS = 5;
// Scratch for `fit`: per hour the standard error² of its mean, its log standard deviation and that one's standard error².
const se2 = new Float64Array(24);
const lsd = new Float64Array(24);
const lse2 = new Float64Array(24);

/**
 * Per UTC hour the weighted moments of ln(value) (weight, Σx, Σx², Σx³, Σx⁴; each day weighing
 * half the next), and the fit made from them at the last `fit()`: per hour the mean and standard
 * deviation of ln(value), each shrunk toward the day's (empirical Bayes: an hour keeps the share
 * τ² / (τ² + its standard error²) of its difference, τ² the hours' spread beyond their noise), so
 * hours that differ no more than their noise does get exactly the day's.
 */
export class HourValues {
  private readonly sums = new Float64Array(24 * MOMENTS);
  private readonly mu = new Float64Array(24);
  private readonly sd = new Float64Array(24).fill(1);
  private mu0 = 0;
  private sd0 = 1;
  /** Some hour's fit differs from the day's: `normalise` and `plan` move values. */
  active = false;

  add(hour: number, value: number): void {
    if (!(value > FLOOR)) return;
    const x = Math.log(value);
    const i = MOMENTS * hour;
    const x2 = x * x;
    this.sums[i]++;
    this.sums[i + 1] += x;
    this.sums[i + 2] += x2;
    this.sums[i + 3] += x2 * x;
    this.sums[i + 4] += x2 * x2;
  }

  /** A new day: what the days before taught weighs half. */
  fade(): void {
    for (let i = 0; i < this.sums.length; i++) this.sums[i] *= 0.5;
  }

  /** The moments, kept across a restart (src/pace/learned.ts): the days they took to learn. */
  moments(): number[] | undefined {
    for (let h = 0; h < 24; h++) if (this.sums[MOMENTS * h] > 0) return Array.from(this.sums);
    return undefined;
  }

  /** Takes back `moments()` and fits them; false, changing nothing, where they are not 24 hours' of finite figures. */
  restore(m: unknown): boolean {
    if (!HourValues.isMoments(m)) return false;
    this.sums.set(m);
    this.fit();
    return true;
  }

  static isMoments(m: unknown): m is number[] {
    return Array.isArray(m) && m.length === 24 * MOMENTS && m.every((x) => typeof x === 'number' && Number.isFinite(x));
  }

  /** Back to no fit (every hour the day's): values are learnt as they are. */
  clear(): void {
    this.active = false;
  }

  /** Fits each hour's mean and spread from the moments; returns `active`. */
  fit(): boolean {
    const s = this.sums;
    let n = 0;
    let sx = 0;
    let hours = 0;
    for (let h = 0; h < 24; h++) {
      const w = s[MOMENTS * h];
      if (w < MIN_HOUR_WEIGHT) continue;
      n += w;
      sx += s[MOMENTS * h + 1];
      hours++;
    }
    this.active = false;
    if (hours < 2) return false;
    const mean = sx / n;
    let lsum = 0;
    let lw = 0;
    for (let h = 0; h < 24; h++) {
      const i = MOMENTS * h;
      const w = s[i];
      if (w < MIN_HOUR_WEIGHT) continue;
      const m = s[i + 1] / w;
      const e2 = s[i + 2] / w;
      const v = Math.max(1e-12, e2 - m * m);
      // Central fourth moment, for the noise of the hour's log standard deviation ((κ - 1) / 4n).
      const m4 = s[i + 4] / w - 4 * m * (s[i + 3] / w) + 6 * m * m * e2 - 3 * m ** 4;
      const kurtosis = Math.max(1, m4 / (v * v));
      this.mu[h] = m;
      se2[h] = v / (w - 1);
      lsd[h] = 0.5 * Math.log(v);
      lse2[h] = (kurtosis - 1) / (4 * (w - 1));
      lsum += w * lsd[h];
      lw += w;
    }
    const lmean = lsum / lw;
    let spread = 0;
    let lspread = 0;
    for (let h = 0; h < 24; h++) {
      if (s[MOMENTS * h] < MIN_HOUR_WEIGHT) continue;
      spread += (this.mu[h] - mean) ** 2 - se2[h];
      lspread += (lsd[h] - lmean) ** 2 - lse2[h];
    }
    const tau2 = Math.max(0, spread / hours);
    const ltau2 = Math.max(0, lspread / hours);
    this.mu0 = mean;
    this.sd0 = Math.exp(lmean);
    for (let h = 0; h < 24; h++) {
      if (s[MOMENTS * h] < MIN_HOUR_WEIGHT) {
        this.mu[h] = mean;
        this.sd[h] = this.sd0;
        continue;
      }
      this.mu[h] = tau2 > 0 ? mean + (tau2 / (tau2 + se2[h])) * (this.mu[h] - mean) : mean;
      this.sd[h] = ltau2 > 0 ? Math.exp(lmean + (ltau2 / (ltau2 + lse2[h])) * (lsd[h] - lmean)) : this.sd0;
      if (this.mu[h] !== mean || this.sd[h] !== this.sd0) this.active = true;
    }
    return this.active;
  }

  /** A value of `hour` standardised to the day's mean and spread (as it is while not `active`). */
  normalise(hour: number, value: number): number {
    if (!this.active || !(value > FLOOR)) return value;
    return Math.exp(this.mu0 + (this.sd0 * (Math.log(value) - this.mu[hour])) / this.sd[hour]);
  }

  /** Hour `h`'s mean and standard deviation of ln(value) as fitted (for tests and plots). */
  hour(h: number): { mu: number; sd: number } {
    return { mu: this.active ? this.mu[h] : this.mu0, sd: this.active ? this.sd[h] : this.sd0 };
  }

  /**
   * The rest of the day's value distribution into `out`: `probs` (the standardised shape, summing
   * to 1) given each remaining hour's mean and spread, weighted by `weights` (the hour's forecast
   * opportunities; 0 for the hours gone). Bin 0 stays where it is. Returns false, `out` untouched,
   * where not `active` or no hour has weight.
   */
  plan(probs: Float64Array, weights: Float64Array, out: Float64Array): boolean {
    if (!this.active) return false;
    let wt = 0;
    for (let h = 0; h < 24; h++) if (weights[h] > 0) wt += weights[h];
    if (!(wt > 0)) return false;
    out.fill(0);
    for (let h = 0; h < 24; h++) {
      const w = weights[h] / wt;
      if (!(w > 0)) continue;
      out[0] += w * probs[0];
      // Bin k's middle, ln = LOG_MIN + (k - 0.5) STEP, goes to mu + r (ln - mu0): position a + r k.
      const r = this.sd[h] / this.sd0;
      const a = (this.mu[h] + r * (LOG_MIN - 0.5 * STEP - this.mu0) - LOG_MIN) / STEP + 0.5;
      for (let k = 1; k < BINS; k++) {
        const q = probs[k];
        if (q <= 0) continue;
        const x = a + r * k;
        const j = Math.floor(x);
        const f = x - j;
        out[Math.min(BINS - 1, Math.max(1, j))] += w * (1 - f) * q;
        if (f > 0) out[Math.min(BINS - 1, Math.max(1, j + 1))] += w * f * q;
      }
    }
    return true;
  }
}
