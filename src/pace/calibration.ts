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
 * One rate's calibration across creatives (clicks per expected click, or conversions per expected
 * conversion): the pooled totals and the fitted relative spread τ² (see createCalibration).
 */
class Spread {
  /** Relative variance of a creative's factor around the centre. */
  tau2: number;
  /** The pooled rate (the model, 1, until a spread is fitted). */
  centre = 1;
  constructor(private readonly k0: number) {
    this.tau2 = 1 / k0;
  }

  /** The creative's factor: its observed and expected events, under a Gamma prior of mean `centre` and 1 / τ² events. */
  factor(observed: number, expected: number): number {
    const events = 1 / this.tau2;
    return (events + observed) / (events / this.centre + expected);
  }

  fit(won: readonly CreativeStats[], observed: (s: CreativeStats) => number, expected: (s: CreativeStats) => number): void {
    const k0 = this.k0;
    let o = 0;
    let e = 0;
    for (const s of won) {
      o += observed(s);
      e += expected(s);
    }
    // DerSimonian–Laird on the creatives with at least one expected event: Pearson's Q against the
    // pooled rate m; each rate O/E has variance m/E under Poisson counts, plus τ²m² between creatives.
    const m = (k0 + o) / (k0 + e);
    let q = 0;
    let n = 0;
    let w = 0;
    let w2 = 0;
    for (const s of won) {
      const E = expected(s);
      if (!(E >= 1)) continue;
      const d = observed(s) - m * E;
      q += (d * d) / (m * E);
      n++;
      w += E / m;
      w2 += (E / m) ** 2;
    }
    const c = w - w2 / w;
    if (n < 2 || !(c > 0)) {
      this.tau2 = 1 / k0;
      this.centre = 1;
      return;
    }
    this.centre = m;
    // τ² of the rates, relative to m; Q's variance is 2(n − 1) with no spread, so the estimate's
    // precision is c²m⁴ / 2(n − 1). The default 1 / k0 is taken as uncertain by its own size
    // (precision k0²); the two are weighed by precision.
    const est = (q - (n - 1)) / c / (m * m);
    const precision = (c * c * m ** 4) / (2 * (n - 1));
    this.tau2 = Math.max(MIN_SPREAD, (est * precision + k0) / (precision + k0 * k0));
  }
}

/** The fields of CreativeStats in a snapshot, in this order (firstClickAt null while Infinity). */
const FIELDS = ['expectedClicks', 'clicks', 'conversions', 'meanPctr', 'meanPcvr', 'seenPctr', 'seenPcvr', 'conversionsOwed', 'pending', 'pendingAt', 'firstClickAt'] as const;

/** What calibration has learnt: the click-to-conversion delay's sum and count, and per creative its FIELDS. */
export interface CalibrationSnapshot {
  delay: [number, number];
  creatives: Array<[string, ...Array<number | null>]>;
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
 * is off creative by creative shows a spread and keeps learning each one quickly. With one creative
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
  function maybeRefit(): void {
    if ((eventSinceFit || sinceFit >= REFIT_EVERY) && clock() - fitAt >= REFIT_MIN_MS) refit();
  }
  return {
    calibratePctr(creativeId: string, modelPctr: number): number {
      const s = creative(creativeId);
      s.seenPctr++;
      s.meanPctr += (modelPctr - s.meanPctr) / Math.min(s.seenPctr, 10_000);
      return Math.min(1, modelPctr * ctr.factor(s.clicks, s.expectedClicks));
    },
    calibratePcvr(creativeId: string, modelPcvr: number): number {
      const s = creative(creativeId);
      s.seenPcvr++;
      s.meanPcvr += (modelPcvr - s.meanPcvr) / Math.min(s.seenPcvr, 10_000);
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
      s.expectedClicks += modelPctr !== undefined && modelPctr >= 0 ? modelPctr : s.meanPctr;
      sinceFit++;
      maybeRefit();
    },
    onClick(creativeId: string): void {
      const s = creatives.get(creativeId);
      if (s === undefined) return;
      s.clicks++;
      const now = clock();
      if (s.firstClickAt === Infinity) s.firstClickAt = now;
      due(s, now);
      s.conversionsOwed += s.meanPcvr;
      s.pending += s.meanPcvr;
      eventSinceFit = true;
      maybeRefit();
    },
    snapshot(): CalibrationSnapshot {
      return {
        delay: [delaySum, delays],
        creatives: [...creatives].map(([id, c]) => [id, ...FIELDS.map((f) => (Number.isFinite(c[f]) ? c[f] : null))]),
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
        x.creatives.every((c) => Array.isArray(c) && c.length === FIELDS.length + 1 && typeof c[0] === 'string' && c.slice(1, -1).every(num) && (c[FIELDS.length] === null || num(c[FIELDS.length])));
      if (!ok) throw new Error('not a calibration snapshot');
      [delaySum, delays] = x!.delay!;
      for (const [id, ...values] of x!.creatives!) {
        const c = new CreativeStats();
        FIELDS.forEach((f, i) => (c[f] = values[i] ?? Infinity));
        creatives.set(id, c);
      }
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
