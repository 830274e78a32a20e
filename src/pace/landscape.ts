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

/** Where `x` lies in its bin `k`: 0 at the bin's bottom, 1 at its top, in log (bin 0, [0, 1e-4], in price). */
function through(x: number, k: number): number {
  if (k === 0) return x > 0 ? Math.min(1, x / TOP[0]) : 0;
  return Math.min(1, Math.max(0, (Math.log(x) - LOG_MIN) / STEP - (k - 1)));
}

/**
 * After this long a notice counts half (`fade`). Two days: after competition rose 50 % for good the
 * pacer bought 0.991-0.993 of the value hindsight buys on the fourth to sixth days after (never
 * faded 0.988-0.990), a steady market as before; on a steady market with a daily price cycle a day
 * lost 0.0005 of it, 12 hours 0.0012, a cap of 20,000 observations 0.0014: the shorter the memory,
 * the more the rest of the day is planned at the prices of the hours just past
 * (docs/pacing-history.md, "The price landscape forgets").
 */
const HALF_LIFE_MS = 2 * 86_400_000;

/** EM steps a read of the histogram runs at most after new counts (each read after more goes on from there). */
const MAX_EM_ITERATIONS = 8;
/** EM has converged when no bin moves by more than this share of the observations. */
const EM_TOLERANCE = 1e-6;
/** Bins a censored counts' window takes on each side of a bin it grows to (fewer reallocations). */
const WINDOW_ROOM = 8;

// Scratch for the EM steps: one landscape computes at a time.
const below = new Float64Array(BINS);
const beyond = new Float64Array(BINS + 1);
const next = new Float64Array(BINS);

/**
 * Distribution of the market price (second price: what a win pays; first price: the highest
 * competing bid) as pseudo-counts per bin, a price uniform in log within its bin. Exact observations
 * (a second-price win, a `${AUCTION_MIN_TO_WIN}`) and the prior count in their bin; censored ones (a
 * loss at bid b: the price was above b; a first-price win at b: it was at most b) are kept per bin
 * of the bid, with where in the bin the bids were, and the histogram is their maximum-likelihood
 * completion (EM): each censored observation spread over the prices it allows, its bid's own bin by
 * the share of it on the allowed side, in proportion to the histogram that results. Every count
 * fades by time (`fade`, at each re-solve): a notice weighs half as much two days later.
 */
export class PriceLandscape {
  private readonly hist = new Float64Array(BINS);
  /** The prior and exact observations, per bin. */
  private readonly exactN = new Float64Array(BINS);
  /**
   * Censored observations per bin of the bid, four numbers a bin from bin `from` on: "at most the
   * bid" (a count and the sum of the bids' places in the bin, `through`) and "above the bid" (a
   * count and the sum of the shares of the bin above the bids). Only the bins the bids reached, a
   * few dozen of the 289 for a campaign, grown as they reach more: a pace is kept for each campaign.
   */
  private censored = new Float64Array(0);
  private from = 0;
  private total = 0;
  /** Counts changed since the histogram was last read. */
  private stale = false;
  /** The prior's weight: fading never takes the counts below it. */
  private floor = 0;
  /** When the counts were last faded (`fade`); NaN before the first. */
  private fadedAt = NaN;

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
    for (let k = 0; k < BINS; k++) l.addExact(k, (weight * d[k]) / s);
    l.floor = weight;
    return l;
  }

  /** A prior worth `weight` observations from a histogram of prices (`counts[i]` prices equal to `i * unit`). */
  static fromCounts(counts: readonly number[], unit: number, weight: number): PriceLandscape {
    const l = new PriceLandscape();
    let s = 0;
    for (const c of counts) s += c;
    if (!(s > 0)) throw new Error('price histogram is empty');
    for (let i = 0; i < counts.length; i++) if (counts[i] > 0) l.addExact(binOf(i * unit), (weight * counts[i]) / s);
    l.floor = weight;
    return l;
  }

  /** A copy that learns on its own: one prior computed once serves every campaign a reload adds. */
  clone(): PriceLandscape {
    const l = new PriceLandscape();
    l.hist.set(this.hist);
    l.exactN.set(this.exactN);
    l.censored = Float64Array.from(this.censored);
    l.from = this.from;
    l.total = this.total;
    l.stale = this.stale;
    l.floor = this.floor;
    l.fadedAt = this.fadedAt;
    return l;
  }

  private addExact(k: number, x: number): void {
    this.exactN[k] += x;
    this.hist[k] += x;
    this.total += x;
    this.stale = true;
  }

  /** The histogram: pseudo-counts per bin, summing to `observations` (read, it brings the EM up to date). */
  get w(): Float64Array {
    if (this.stale) this.settle();
    return this.hist;
  }

  get observations(): number {
    return this.total;
  }

  exact(price: number): void {
    this.addExact(binOf(price), 1);
  }

  /**
   * Forgets as of `nowMs`: every count (the prior's, exact, censored) weighs half as much HALF_LIFE_MS
   * later, all by one factor, so the histogram keeps its shape and the prior its share (it does not
   * come back to dominate), and the Thompson draw keeps exploring: its counts stop growing at about
   * 2.9 days of notices. Forgetting by time, as the values do, at any traffic. Never below the
   * prior's weight: a campaign idle for weeks plans on the market it last saw, worth as much as a prior.
   */
  fade(nowMs: number): void {
    if (!(nowMs > this.fadedAt)) {
      // The first call starts the clock; a clock stepped back restarts it there, or nothing would
      // fade until it caught up with the time it had stepped to (a review: +7 days, then back,
      // six days of counts kept whole).
      if (Number.isNaN(this.fadedAt) || nowMs < this.fadedAt) this.fadedAt = nowMs;
      return;
    }
    const f = Math.min(1, Math.max(Math.pow(0.5, (nowMs - this.fadedAt) / HALF_LIFE_MS), this.floor / this.total));
    this.fadedAt = nowMs;
    if (!(f < 1)) return;
    for (let k = 0; k < BINS; k++) {
      this.exactN[k] *= f;
      this.hist[k] *= f;
    }
    for (let i = 0; i < this.censored.length; i++) this.censored[i] *= f;
    this.total *= f;
  }

  /** The price was above `bid` (a loss without min-to-win). */
  above(bid: number): void {
    const k = binOf(bid);
    const i = this.slot(k);
    this.censored[i + 2]++;
    this.censored[i + 3] += 1 - through(bid, k);
    this.total++;
    this.stale = true;
  }

  /** The price was at most `bid` (a first-price win). */
  atMost(bid: number): void {
    const k = binOf(bid);
    const i = this.slot(k);
    this.censored[i]++;
    this.censored[i + 1] += through(bid, k);
    this.total++;
    this.stale = true;
  }

  /** Where bin k's censored counts are, the window grown to hold it (with room for its neighbours). */
  private slot(k: number): number {
    const c = this.censored;
    const to = this.from + c.length / 4;
    if (k >= this.from && k < to) return 4 * (k - this.from);
    const empty = c.length === 0;
    const lo = Math.max(0, Math.min(empty ? k : this.from, k - WINDOW_ROOM));
    const hi = Math.min(BINS, Math.max(empty ? k + 1 : to, k + 1 + WINDOW_ROOM));
    this.censored = new Float64Array(4 * (hi - lo));
    if (!empty) this.censored.set(c, 4 * (this.from - lo));
    this.from = lo;
    return 4 * (k - lo);
  }

  /**
   * EM from the histogram it has, until it converges or for MAX_EM_ITERATIONS: warm, a few steps
   * follow the few notices of a re-solve's slot, and each later read with new counts goes on.
   */
  private settle(): void {
    this.stale = false;
    for (let i = 0; i < MAX_EM_ITERATIONS && this.emStep() > EM_TOLERANCE * this.total; i++);
  }

  /**
   * One EM step, O(BINS): each bin's censored observations spread over the bins they allow in
   * proportion to the histogram (their bids' bin by their mean share on the allowed side: exact
   * where the bids share a place in it, as bids at bin tops do), plus the exact counts. Those the
   * histogram gives no chance go to the nearest bin they allow. Returns the largest change of a bin.
   */
  private emStep(): number {
    const w = this.hist;
    const c = this.censored;
    sums(w);
    let r = 0;
    for (let k = BINS - 1; k >= 0; k--) {
      let x = this.exactN[k] + w[k] * r;
      const i = 4 * (k - this.from);
      const n = i >= 0 && i < c.length ? c[i] : 0;
      if (n > 0) {
        const L = below[k] + (c[i + 1] / n) * w[k];
        if (L > 0) {
          x += (c[i + 1] * w[k]) / L;
          r += n / L;
        } else x += n;
      }
      next[k] = x;
    }
    let q = 0;
    for (let k = 0; k < BINS; k++) {
      next[k] += w[k] * q;
      const i = 4 * (k - this.from);
      const n = i >= 0 && i < c.length ? c[i + 2] : 0;
      if (n > 0) {
        const U = (c[i + 3] / n) * w[k] + beyond[k + 1];
        if (U > 0) {
          next[k] += (c[i + 3] * w[k]) / U;
          q += n / U;
        } else next[Math.min(BINS - 1, k + 1)] += n;
      }
    }
    let change = 0;
    for (let k = 0; k < BINS; k++) {
      change = Math.max(change, Math.abs(next[k] - w[k]));
      w[k] = next[k];
    }
    return change;
  }

  /**
   * Probabilities per bin: the mean of the histogram, or with `random` a Thompson draw from its
   * Dirichlet posterior (each bin a Gamma draw), so re-solves explore what the counts leave open.
   */
  probabilities(out: Float64Array, random?: () => number): Float64Array {
    const w = this.w;
    let s = 0;
    for (let k = 0; k < BINS; k++) {
      const x = w[k] <= 0 ? 0 : random ? sampleGamma(random, w[k]) : w[k];
      out[k] = x;
      s += x;
    }
    for (let k = 0; k < BINS; k++) out[k] = s > 0 ? out[k] / s : 1 / BINS;
    return out;
  }
}

/** below[k]: the mass of the bins under bin k; beyond[k]: of bin k and those above it (beyond[BINS] = 0). */
function sums(w: Float64Array): void {
  let c = 0;
  for (let k = 0; k < BINS; k++) {
    below[k] = c;
    c += w[k];
  }
  c = 0;
  for (let k = BINS - 1; k >= 0; k--) beyond[k] = c += w[k];
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
