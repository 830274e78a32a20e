import { creativeFingerprint } from '../features/features.js';
import { utcDay } from '../ledger/budget.js';
import { Spread } from './calibration-spread.js';
import { ClickAges, ConversionDelay, HOUR_MS, type ConversionDelaySnapshot } from './conversion-delay.js';

export { Spread } from './calibration-spread.js';

export class CreativeStats {
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

/**
 * The conversion window where the caller sets none: `conversionWindowMs`'s default
 * (src/config/settings.ts). A conversion token expires that long after its click, so a conversion
 * comes within it or not at all, and a click that old is wholly due: reckoned over another window
 * than the bidder's, a shorter one left clicks owed that could no longer convert, a longer one
 * stopped counting those that still could.
 */
const DEFAULT_WINDOW_MS = 7 * 86_400_000;

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
