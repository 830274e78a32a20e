/**
 * What the value pacer knows of the market, as histograms on one log-spaced grid of CPM prices:
 * the price landscape (the highest competing bid, learned from wins and from losses as censored
 * observations) and the distribution of the values of the opportunities a campaign sees.
 *
 * One grid for both, so the optimiser (optimiser.ts) can ask "what does bidding u win and cost"
 * with a lookup. Bins: 32 per decade from 1e-4 to 1e5 CPM (9 decades, 288 bins, each 7.5 % wide),
 * plus bin 0 for prices at or under the grid's floor (iPinYou logs have prices of 0).
 */
import { sampleGamma } from '../random/random.js';

export const BINS_PER_DECADE = 32;
const LOG_MIN = Math.log(1e-4);
const STEP = Math.log(10) / BINS_PER_DECADE;
export const BINS = 9 * BINS_PER_DECADE + 1;

// Tabulated: the optimiser reads every bin's edges on each re-solve, and Math.exp dominated it.
const TOP = Float64Array.from({ length: BINS + 1 }, (_, k) => Math.exp(LOG_MIN + k * STEP));
const MID = Float64Array.from({ length: BINS + 1 }, (_, k) => (k === 0 ? TOP[0] / 2 : Math.exp(LOG_MIN + (k - 0.5) * STEP)));

/** Upper edge of bin k (bin 0 holds [0, 1e-4]). */
export function binTop(k: number): number {
  return TOP[k] ?? Math.exp(LOG_MIN + k * STEP);
}

/** Geometric middle of bin k; bin 0 counts as half its top. */
export function binMid(k: number): number {
  return MID[k] ?? Math.exp(LOG_MIN + (k - 0.5) * STEP);
}

export function binOf(x: number): number {
  if (!(x > binTop(0))) return 0;
  return Math.min(BINS - 1, Math.ceil((Math.log(x) - LOG_MIN) / STEP));
}

/**
 * Distribution of the market price (second price: what a win pays; first price: the highest
 * competing bid) as pseudo-counts per bin. Exact observations (a second-price win, a
 * `${AUCTION_MIN_TO_WIN}`) add one count to their bin; censored ones (a loss at bid b: the price
 * was above b; a first-price win at b: it was at most b) add one count spread over the bins
 * they allow, in proportion to what the histogram already believes there (one EM step).
 */
export class PriceLandscape {
  readonly w = new Float64Array(BINS);
  private total = 0;

  /** A prior worth `weight` observations: log-normal around `medianCpm` with log-spread `sigma`. */
  static logNormal(medianCpm: number, sigma: number, weight: number): PriceLandscape {
    const l = new PriceLandscape();
    const mu = Math.log(medianCpm);
    let s = 0;
    const d = new Float64Array(BINS);
    for (let k = 0; k < BINS; k++) {
      const z = (Math.log(binMid(k)) - mu) / sigma;
      d[k] = Math.exp(-0.5 * z * z);
      s += d[k];
    }
    for (let k = 0; k < BINS; k++) l.add(k, (weight * d[k]) / s);
    return l;
  }

  /** A prior worth `weight` observations from a histogram of prices (`counts[i]` prices equal to `i * unit`). */
  static fromCounts(counts: readonly number[], unit: number, weight: number): PriceLandscape {
    const l = new PriceLandscape();
    let s = 0;
    for (const c of counts) s += c;
    if (!(s > 0)) throw new Error('price histogram is empty');
    for (let i = 0; i < counts.length; i++) if (counts[i] > 0) l.add(binOf(i * unit), (weight * counts[i]) / s);
    return l;
  }

  /** A copy that learns on its own: one prior computed once serves every campaign a reload adds. */
  clone(): PriceLandscape {
    const l = new PriceLandscape();
    l.w.set(this.w);
    l.total = this.total;
    return l;
  }

  private add(k: number, x: number): void {
    this.w[k] += x;
    this.total += x;
  }

  get observations(): number {
    return this.total;
  }

  exact(price: number): void {
    this.add(binOf(price), 1);
  }

  /** The price was above `bid` (a loss without min-to-win). */
  above(bid: number): void {
    this.spread(binOf(bid) + 1, BINS);
  }

  /** The price was at most `bid` (a first-price win). */
  atMost(bid: number): void {
    this.spread(0, binOf(bid) + 1);
  }

  private spread(from: number, to: number): void {
    let s = 0;
    for (let k = from; k < to; k++) s += this.w[k];
    if (s > 0) for (let k = from; k < to; k++) this.add(k, this.w[k] / s);
    else if (from < to) this.add(from < BINS ? from : BINS - 1, 1);
  }

  /**
   * Probabilities per bin: the mean of the histogram, or with `random` a Thompson draw from its
   * Dirichlet posterior (each bin a Gamma draw), so re-solves explore what the counts leave open.
   */
  probabilities(out: Float64Array, random?: () => number): Float64Array {
    let s = 0;
    for (let k = 0; k < BINS; k++) {
      const x = this.w[k] <= 0 ? 0 : random ? sampleGamma(random, this.w[k]) : this.w[k];
      out[k] = x;
      s += x;
    }
    for (let k = 0; k < BINS; k++) out[k] = s > 0 ? out[k] / s : 1 / BINS;
    return out;
  }
}

/**
 * The weight of an opportunity at a given millisecond for histograms whose weights are relative to
 * `t0`: 2^((ms - t0) / halfLife), one power per distinct millisecond for all of them.
 */
interface Epoch {
  readonly t0: number;
  lastMs: number;
  weight: number;
}

/**
 * The fading shared by a pacer's value histograms. Each of them computed the same power of two as
 * every other one that began in the same millisecond (about ten per bid request, one per eligible
 * campaign); those now share it, so the weights stay exactly what each would compute alone.
 */
export class ValueClock {
  // Histograms begun in the same millisecond share one epoch. Only a cache: a histogram keeps its
  // epoch, and a new one for the same t0 computes the same powers, so starting over changes nothing.
  private readonly epochs = new Map<number, Epoch>();

  /** @param halfLifeMs after this long an opportunity weighs half as much (default 12 hours). */
  constructor(readonly halfLifeMs = 12 * 3_600_000) {
    if (!(halfLifeMs > 0)) throw new Error('halfLifeMs must be > 0');
  }

  epoch(t0: number): Epoch {
    let e = this.epochs.get(t0);
    if (e === undefined) {
      if (this.epochs.size >= MAX_EPOCHS) this.epochs.clear();
      e = { t0, lastMs: t0, weight: 1 };
      this.epochs.set(t0, e);
    }
    return e;
  }

  /** The weight at `nowMs` of an opportunity relative to `e.t0`: 2^((nowMs - t0) / halfLife). */
  weight(e: Epoch, nowMs: number): number {
    if (nowMs !== e.lastMs) {
      e.lastMs = nowMs;
      e.weight = Math.pow(2, (nowMs - e.t0) / this.halfLifeMs);
    }
    return e.weight;
  }
}

// More than one per campaign is a cache that no longer saves anything.
const MAX_EPOCHS = 65_536;

/**
 * How often each value bin occurred among a campaign's opportunities, an opportunity weighing
 * half as much `halfLifeMs` later. The optimiser plans the rest of the day on these values, so
 * they should be the values the coming hours will bring: today's more than last week's. Forgetting
 * by time, not by count, keeps that meaning at any traffic: a campaign that sees a thousand
 * opportunities a day and one that sees a million both plan on about the last half day.
 */
export class ValueHistogram {
  readonly w = new Float64Array(BINS);
  total = 0;
  /** The time the weights are relative to (its first opportunity, or the last renormalisation). */
  private epoch: Epoch | null = null;

  constructor(private readonly clock = new ValueClock()) {}

  add(value: number, nowMs: number): void {
    // Forgetting by growing the weight of new entries; renormalised before it overflows.
    let weight = this.clock.weight((this.epoch ??= this.clock.epoch(nowMs)), nowMs);
    if (weight > 1e100) {
      for (let k = 0; k < BINS; k++) this.w[k] /= weight;
      this.total /= weight;
      weight = this.clock.weight((this.epoch = this.clock.epoch(nowMs)), nowMs);
    }
    this.w[binOf(value)] += weight;
    this.total += weight;
  }

  get empty(): boolean {
    return this.total <= 0;
  }
}
