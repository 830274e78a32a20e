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
  /** The conversions the model expects of the clicks so far (Σ pCVR), of which `pending` are not due yet (as of `pendingAt`). */
  conversionsOwed = 0;
  pending = 0;
  pendingAt = 0;
  /** When its first counted click came (a conversion of an earlier click, e.g. before a restart, is not counted against these). */
  firstClickAt = Infinity;
  /** Whether it is among the creatives the spreads are fitted on (it has had an impression). */
  pooled = false;
  /** Its CTR factor, computed under the CTR spread's `ctrVersion` (stale after a fit or a change of its counts). */
  ctrFactor = 1;
  ctrVersion = -1;
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
class Spread {
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
  private atypical(observed: number, expected: number): number {
    if (!this.fitted) return 0;
    const k0 = this.k0;
    const events = 1 / this.tau2;
    const rate0 = k0 / this.centre;
    const rate = events / this.centre;
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
  factor(observed: number, expected: number): number {
    const weak = (this.k0 + observed) / (this.k0 / this.centre + expected);
    if (!this.fitted) return weak;
    const events = 1 / this.tau2;
    const w = this.atypical(observed, expected);
    return w * weak + (1 - w) * ((events + observed) / (events / this.centre + expected));
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

/** The fields of CreativeStats in a snapshot, in this order (firstClickAt null while Infinity). */
const FIELDS = ['expectedClicks', 'clicks', 'conversions', 'meanPctr', 'meanPcvr', 'seenPctr', 'seenPcvr', 'conversionsOwed', 'pending', 'pendingAt', 'firstClickAt'] as const;

/** What calibration has learnt: the click-to-conversion delay's sum and count, and per creative its FIELDS. */
export interface CalibrationSnapshot {
  delay: [number, number];
  creatives: Array<[string, ...Array<number | null>]>;
  /** The creatives no campaign lists, with when a reload first found them so (absent before 2026-12). */
  removed?: Array<[string, number]>;
}

/** What `keepCreativesOf` needs of a campaign: its creatives, when the caller knows them. */
export interface CatalogCampaign {
  creatives?: readonly { id: string }[];
}

export interface CalibrationOptions {
  /** Pseudo-events of each creative's prior (mean 1: the model as it is), default 3. */
  priorEvents?: number;
  /** What the conversions due are reckoned against. */
  clock: () => number;
  /**
   * Mean delay from a click to its conversion assumed until conversions say otherwise, ms
   * (default 1 h, worth 10 conversions).
   */
  conversionDelayMs?: number;
}

/**
 * Each creative's CTR (and CVR) calibration: the model's probability times the posterior mean of
 * observed events against those the model expected on the same trials (Gamma-Poisson, prior mean
 * 1 worth `priorEvents` events). Few trials: the model as it is; many: the model, corrected by
 * what was seen. Shared by every pacer.
 *
 * Conversions come hours or days after their click, so the conversions expected so far count
 * each click by the chance that its conversion is due by now: 1 − e^(−age / d), with d the mean
 * click-to-conversion delay (exponential), learnt from the delays of the conversions seen (a
 * conversion notice carries its click's time). Counting every click at once would read a creative
 * as converting less than the model says for as long as conversions are pending: a quarter less
 * at the end of a day of steady clicks with a 6-hour delay (test/pace.test.ts).
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
 * as before.
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
  const DELAY_PRIOR_WEIGHT = 10;
  let delaySum = DELAY_PRIOR_WEIGHT * (opts.conversionDelayMs ?? 3_600_000);
  let delays = DELAY_PRIOR_WEIGHT;
  const creatives = new Map<string, CreativeStats>();
  /**
   * The creatives no campaign lists, since when (epoch ms). Kept to the end of the UTC day after
   * that, as a removed creative's landing page is kept a day (src/live/live.ts): its clicks and
   * conversions still come, and one added back soon keeps what it learnt. Never pruned before,
   * every reload that replaced creatives left theirs for good: 200 reloads of 20 creatives, 4,000
   * entries in learned.json and about 1 KB of heap each.
   */
  const removedAt = new Map<string, number>();
  /** The conversions due by `now` of what the creative's clicks owe (the rest decays toward due). */
  function due(s: CreativeStats, now: number): number {
    if (now > s.pendingAt) {
      s.pending *= Math.exp(-(now - s.pendingAt) / (delaySum / delays));
      s.pendingAt = now;
    }
    return s.conversionsOwed - s.pending;
  }
  function creative(id: string): CreativeStats {
    let s = creatives.get(id);
    if (s === undefined) {
      s = new CreativeStats();
      creatives.set(id, s);
    }
    return s;
  }
  const ctr = new Spread(priorEvents);
  const cvr = new Spread(priorEvents);
  /** Creatives with an impression, the only ones the spreads are fitted on. */
  const won: CreativeStats[] = [];
  let sinceFit = 0;
  let eventSinceFit = false;
  let fitAt = -Infinity;
  function refit(): void {
    sinceFit = 0;
    eventSinceFit = false;
    const now = clock();
    fitAt = now;
    ctr.fit(won, (s) => s.clicks, (s) => s.expectedClicks);
    // Only creatives priced on a pCVR: a CPC creative's conversions were expected by no model.
    cvr.fit(won, (s) => (s.seenPcvr > 0 ? s.conversions : 0), (s) => (s.seenPcvr > 0 ? due(s, now) : 0));
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
      if (learn) {
        s.seenPcvr++;
        s.meanPcvr += (modelPcvr - s.meanPcvr) / Math.min(s.seenPcvr, 10_000);
      }
      return Math.min(1, modelPcvr * cvr.factor(s.conversions, due(s, clock())));
    },
    /**
     * An impression won, with the model's pCTR it was bid on. The clicks to expect are those of the
     * impressions won, not the mean over every opportunity: bids rise with pCTR, so what is won is
     * the high-pCTR part, and the mean would read the model as too pessimistic (and the creative's
     * CTR as higher than it is). Without the pCTR (a notice whose bid is no longer known), the mean.
     */
    onImpression(creativeId: string, modelPctr?: number): void {
      const s = creatives.get(creativeId);
      if (s === undefined) return;
      if (!s.pooled) {
        s.pooled = true;
        won.push(s);
      }
      s.expectedClicks += modelPctr !== undefined && modelPctr >= 0 && modelPctr <= 1 ? modelPctr : s.meanPctr;
      s.ctrVersion = -1;
      sinceFit++;
      maybeRefit();
    },
    onClick(creativeId: string): void {
      const s = creatives.get(creativeId);
      if (s === undefined) return;
      s.clicks++;
      s.ctrVersion = -1;
      const now = clock();
      if (s.firstClickAt === Infinity) s.firstClickAt = now;
      due(s, now);
      s.conversionsOwed += s.meanPcvr;
      s.pending += s.meanPcvr;
      eventSinceFit = true;
      maybeRefit();
    },
    /**
     * At a reload: creatives in none of the campaigns are marked removed, and those removed before
     * yesterday (UTC) are dropped, with the spreads refitted without them. Nothing is marked when a
     * campaign does not list its creatives (a caller that does not know them).
     */
    keepCreativesOf(campaigns: readonly CatalogCampaign[]): void {
      const listed = new Set<string>();
      for (const c of campaigns) {
        if (c.creatives === undefined) return;
        for (const cr of c.creatives) listed.add(cr.id);
      }
      const now = clock();
      const dropped = new Set<CreativeStats>();
      for (const [id, s] of creatives) {
        if (listed.has(id)) {
          removedAt.delete(id);
          continue;
        }
        const at = removedAt.get(id);
        if (at === undefined) removedAt.set(id, now);
        else if (utcDay(now) > utcDay(at) + 1) {
          creatives.delete(id);
          removedAt.delete(id);
          if (s.pooled) dropped.add(s);
        }
      }
      if (dropped.size > 0) {
        let n = 0;
        for (const s of won) if (!dropped.has(s)) won[n++] = s;
        won.length = n;
        refit();
      }
    },

    snapshot(): CalibrationSnapshot {
      return {
        delay: [delaySum, delays],
        creatives: [...creatives].map(([id, c]) => [id, ...FIELDS.map((f) => (Number.isFinite(c[f]) ? c[f] : null))]),
        removed: [...removedAt],
      };
    },

    /** Takes back a snapshot; throws on one that is not a snapshot, changing nothing. */
    restore(snap: unknown): void {
      const x = snap as Partial<CalibrationSnapshot> | null;
      const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
      const ok =
        Array.isArray(x?.delay) &&
        x.delay.length === 2 &&
        x.delay.every(num) &&
        x.delay[1] > 0 &&
        Array.isArray(x.creatives) &&
        x.creatives.every((c) => Array.isArray(c) && c.length === FIELDS.length + 1 && typeof c[0] === 'string' && c.slice(1, -1).every(num) && (c[FIELDS.length] === null || num(c[FIELDS.length]))) &&
        (x.removed === undefined || (Array.isArray(x.removed) && x.removed.every((r) => Array.isArray(r) && r.length === 2 && typeof r[0] === 'string' && num(r[1]))));
      if (!ok) throw new Error('not a calibration snapshot');
      [delaySum, delays] = x!.delay!;
      for (const [id, ...values] of x!.creatives!) {
        const c = new CreativeStats();
        FIELDS.forEach((f, i) => (c[f] = values[i] ?? Infinity));
        creatives.set(id, c);
      }
      // Removed before the restart: they go when they would have.
      for (const [id, at] of x!.removed ?? []) if (creatives.has(id)) removedAt.set(id, at);
      won.length = 0;
      for (const c of creatives.values()) {
        c.pooled = c.expectedClicks > 0 || c.clicks > 0;
        if (c.pooled) won.push(c);
      }
      refit();
    },

    /** A conversion; with its click's time when the notice tells it (it teaches the delay). */
    onConversion(creativeId: string, clickMs?: number): void {
      const s = creatives.get(creativeId);
      if (s !== undefined && !(clickMs !== undefined && clickMs < s.firstClickAt)) s.conversions++;
      const delay = clock() - (clickMs ?? NaN);
      if (delay >= 0) {
        delaySum += delay;
        delays++;
      }
      eventSinceFit = true;
      maybeRefit();
    },
  };
}

export type Calibration = ReturnType<typeof createCalibration>;
