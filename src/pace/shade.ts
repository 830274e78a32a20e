import type { Shader } from '../types.js';

export interface ShaderOptions {
  /** Notices the pooled model needs before any bid is shaded; until then the value is bid (default 50). */
  minObservations?: number;
  /**
   * What a fit's starting point is worth, in observations (default 5): a new segment starts where
   * its parent is, and its first notices move it as a running mean against that weight.
   */
  priorWeight?: number;
  /** Step size of the online fit (default 0.02). */
  learningRate?: number;
  /**
   * Most segments learned separately, and most context effects (default 10 000). When the table is
   * full a new site's fit replaces the least recently observed one; the pooled fit and the prefixes
   * (exchange, exchange|format, ...) are never replaced. Effects beyond it share the pooled model.
   */
  maxSegments?: number;
  /** Where every model starts: median highest competing bid (CPM USD) and log-space spread (default 1, 1). */
  prior?: { medianCpmUsd: number; sigma: number };
  /**
   * Step size of the shared context effects (default 0.02, a settled fit's). At 0.005, a quarter of
   * it, a new hour's shift was taken up by the faster fits first, each site's apart; with the hour
   * start below, 0.02 priced the demo market's first-price auctions better (docs/pacing-history.md,
   * "The shading target's ceiling").
   */
  effectRate?: number;
}

/** The learned model of one segment, for metrics and tests. */
export interface CompetitionModel {
  /** Mean and standard deviation of ln(highest competing bid, CPM USD). */
  mu: number;
  sigma: number;
  observations: number;
}

export interface BidShader extends Shader {
  model(segment: string): CompetitionModel | undefined;
  /** What it has learnt, as plain JSON (kept across restarts, src/pace/learned.ts). */
  snapshot(): ShaderSnapshot;
  /** Takes back a snapshot's fits and effects; throws on one that is not a snapshot, changing nothing. */
  restore(s: unknown): void;
}

/**
 * Fits as [segment, mu, ln sigma, observations]; context effects as [key, shift]; floors as
 * [site, mean ln floor less the context's effects, floors seen, its vote in its parent's reference
 * (absent before it had a notice)] and the floor's learnt weight (both absent from a snapshot written
 * before the shader read floors: restored as none seen). The parents' references are not written:
 * they are the mean of their sites' votes. A file written before the votes (parents listed as sites,
 * no vote at all) casts each noticed site's mean as its vote.
 */
export interface ShaderSnapshot {
  fits: Array<[string, number, number, number]>;
  effects: Array<[string, number]>;
  floors?: Array<[string, number, number] | [string, number, number, number, number]>;
  floorWeight?: number;
}

/** The segment key under which every observation is also pooled. */
export const POOLED = '*';

class Fit {
  mu: number;
  logSigma: number;
  n = 0;
  /** A proper prefix of some segment's path (or the pooled fit): never evicted. */
  inner = false;
  constructor(mu: number, logSigma: number) {
    this.mu = mu;
    this.logSigma = logSigma;
  }
}

/**
 * First-price bid shading. Per segment, the highest competing bid H is modelled as log-normal,
 * fitted online by stochastic gradient on the likelihood of what notices reveal: H itself when the
 * exchange sends min-to-win, otherwise only H <= bid (a win) or H > bid (a loss), i.e. censored
 * observations. The bid maximises expected surplus (value - b) * P(H <= b) over floor <= b <= value.
 * A segment is a '|'-separated path (exchange|format|kind|site, src/price/choose.ts): every prefix
 * is learned too, and the most specific one seen is used: a new segment starts from its parent's
 * fit, so a busy site gets its own competition and a rare one its exchange and format's, moved by
 * what the site's few notices said, and by where its floors sit against its parent's (below). Until
 * the pooled model has enough notices, the value is bid unshaded (the safe choice: shading on no
 * evidence only loses auctions).
 */
export function createShader(opts: ShaderOptions = {}): BidShader {
  const minObs = opts.minObservations ?? 50;
  const priorWeight = opts.priorWeight ?? 5;
  if (!(priorWeight > 0)) throw new Error('shader priorWeight must be > 0');
  const rate = opts.learningRate ?? 0.02;
  const maxSegments = opts.maxSegments ?? 10_000;
  const prior = opts.prior ?? { medianCpmUsd: 1, sigma: 1 };
  if (!(prior.medianCpmUsd > 0 && prior.sigma > 0)) throw new Error('shader prior needs medianCpmUsd > 0 and sigma > 0');
  const fits = new Map<string, Fit>();
  const pooled = new Fit(Math.log(prior.medianCpmUsd), Math.log(prior.sigma));
  pooled.inner = true;
  fits.set(POOLED, pooled);
  /**
   * The fits that may be evicted (full paths, not prefixes of another), least recently observed
   * first: an observation moves its fit to the end (a delete and a set, O(1)), and a new segment in
   * a full table takes the first one's place. Recency rather than a decayed count of observations:
   * it costs nothing more on the notice path (a count needs a heap, or a scan of the table per
   * eviction), and a site observed at least once per `maxSegments` new segments keeps its fit. What
   * goes is a site unheard of for longest, which its parent's fit prices about as well. While the
   * first segments kept their places for good, a bidder seeing millions of sites filled the table
   * within hours and never learnt another, however busy.
   */
  const leaves = new Map<string, Fit>();

  /** Frees a place: the least recently observed leaf goes, unless it is `keep`; false when none can. */
  function evict(keep?: Fit): boolean {
    for (const [key, f] of leaves) {
      if (f === keep) return false;
      leaves.delete(key);
      fits.delete(key);
      return true;
    }
    return false;
  }

  /** Marks a fit a prefix of another: it leaves the eviction order for good. */
  function makeInner(key: string, f: Fit): void {
    if (f.inner) return;
    f.inner = true;
    leaves.delete(key);
  }

  /**
   * Context effects shared by every segment (hour × device, ad size: keys after the path's '~',
   * src/price/choose.ts): ln H = the segment's mu + the sum of its context's effects. Competition
   * moves with these everywhere at once, so each is learnt from every segment's notices, where a
   * path level per value would split a site's few notices further.
   */
  const effects = new Map<string, number>();
  const effectRate = opts.effectRate ?? 0.02;

  /**
   * What floors say of a site's competition. Publishers set floors against the prices they see
   * clear (price rules, dynamic floors), so a site whose floors sit above its parent's is likely
   * dearer, and that is known from its first bid request, long before its few notices say so. Per
   * path (a site and its parent) a running mean of ln(floor) less the context's effects, from the
   * floors the shader is asked to bid over; a site prices at its fit plus `floorWeight` times (its
   * mean - its parent's reference), and before it has a fit, at its parent's fit plus the same. The
   * reference is the mean of the parent's sites' means, one vote each weighing the site's notices up
   * to FLOOR_VOTE_NOTICES, so a site's requests buy it no more say (a running mean over requests was
   * set by whichever site sent the most: 200 requests at a 0.001 floor from one site moved another's
   * bid 1.61 -> 3.54). A site votes from its first floor after a notice, so ids that only send
   * requests (made up, or floors over every value) have none, and its vote is held within
   * FLOOR_VOTE_SPAN of the reference, so one site moves it by at most that times its share of the
   * weight. The term itself is held within FLOOR_TERM_MAX. The weight
   * starts at 0 (floors taken as saying nothing) and is learnt from the notices as the effects are,
   * so on a market whose floors carry nothing of the competition it stays near 0. The term is a
   * constant offset on the site's own fit, which a busy site's notices absorb: it matters while a
   * site is thin (on the simulated demo market, sites with under 50 notices priced their
   * competition 0.30 off in log; docs/pacing-history.md, "Session 34").
   */
  const floors = new Map<string, FloorMean>();
  /** Per parent path, the mean of its sites' votes. */
  const refs = new Map<string, FloorRef>();
  let floorWeight = 0;
  /** The last floor learnt: the candidates of one imp are shaded one after another over the same floor, which counts once. */
  let lastSegment = '';
  let lastFloor = 0;

  /**
   * A site's floor means in each of its formats, keyed by its path less the format (the second
   * level: exchange|kind|site). A site's standing against its parents is much the same in every
   * format it sells, so its gap is read from the floors of all of them.
   */
  const formats = new Map<string, FloorMean[]>();

  /** Starts a path's floor mean (bounded as the fits are, the longest unused going first) and files it under its site. */
  function addSite(key: string, mean: number, n: number): FloorMean {
    if (floors.size >= maxSegments) dropSite(floors.keys().next().value!);
    const p = parse(key);
    const m: FloorMean = { mean, n, parent: p.prefixes.length < 2 ? '' : p.prefixes[p.prefixes.length - 2], site: p.site };
    floors.set(key, m);
    const group = formats.get(m.site);
    if (group === undefined) formats.set(m.site, [m]);
    else group.push(m);
    return m;
  }

  function learnFloor(prefixes: readonly string[], segment: string, floorCpmUsd: number, offset: number): void {
    if (!(floorCpmUsd > 0) || prefixes.length < 2 || (segment === lastSegment && floorCpmUsd === lastFloor)) return;
    lastSegment = segment;
    lastFloor = floorCpmUsd;
    const x = Math.log(floorCpmUsd) - offset;
    if (!isLogPrice(x)) return;
    const key = prefixes[prefixes.length - 1];
    let m = floors.get(key);
    if (m === undefined) m = addSite(key, x, 0);
    else {
      floors.delete(key);
      floors.set(key, m);
    }
    m.n++;
    m.mean += Math.max(rate, 1 / m.n) * (x - m.mean);
    const f = fits.get(key);
    if (f !== undefined) vote(m, prefixes[prefixes.length - 2], Math.min(FLOOR_VOTE_NOTICES, f.n));
  }

  /**
   * Casts (or moves) a site's vote in its parent's reference: its mean, held within FLOOR_VOTE_SPAN
   * of the reference, weighing `weight` (its notices, up to FLOOR_VOTE_NOTICES).
   */
  function vote(m: FloorMean, parentKey: string, weight: number, cast?: number): void {
    let r = refs.get(parentKey);
    if (r === undefined) {
      if (refs.size >= maxSegments) dropOldest(refs);
      r = { mean: m.mean, n: 0 };
    } else refs.delete(parentKey);
    refs.set(parentKey, r);
    // A reference evicted and made again holds none of the votes cast in the one before.
    if (m.ref !== r) {
      m.ref = r;
      m.vote = undefined;
    }
    const v = cast ?? (r.n === 0 ? m.mean : Math.min(r.mean + FLOOR_VOTE_SPAN, Math.max(r.mean - FLOOR_VOTE_SPAN, m.mean)));
    if (m.vote !== undefined) unvote(m, r);
    r.n += weight;
    r.mean += (weight * (v - r.mean)) / r.n;
    m.vote = v;
    m.weight = weight;
  }

  function unvote(m: FloorMean, r: FloorRef): void {
    const rest = r.n - m.weight!;
    if (rest > 0) r.mean = (r.mean * r.n - m.vote! * m.weight!) / rest;
    r.n = rest;
    m.vote = undefined;
  }

  /** Forgets a site's floors and takes its vote back out of its parent's reference. */
  function dropSite(key: string): void {
    const m = floors.get(key);
    if (m === undefined) return;
    floors.delete(key);
    const group = formats.get(m.site)!;
    if (group.length === 1) formats.delete(m.site);
    else group.splice(group.indexOf(m), 1);
    const r = m.ref;
    // A reference since evicted is no one's: moving it changes nothing.
    if (r !== undefined && m.vote !== undefined) unvote(m, r);
  }

  /** Whether a segment priced by fit `f` takes the floor's term: only by the site's own fit, or its parent's (where it starts). */
  function floorPriced(prefixes: readonly string[], f: Fit | undefined): boolean {
    const last = prefixes.length - 1;
    return last >= 1 && f !== undefined && (f === fits.get(prefixes[last]) || f === fits.get(prefixes[last - 1]));
  }

  /**
   * Where the site's floors sit against its parents' references, over its formats, each format's
   * gap weighing the floors its mean holds (a running mean at `rate` holds about 1 / rate). A thin
   * format of a site is then priced by the floors of the formats it is busy in: replaying demo seed
   * 1's first-price auctions through the shader, after 02:00 a site's first 10 auctions in a format
   * priced its competition 0.21 off in log (root mean square) by that format's floors, 0.17 by all.
   */
  function floorGap(p: Parsed): number {
    if (p.prefixes.length < 2) return 0;
    const group = formats.get(p.site);
    if (group === undefined) return 0;
    let sum = 0;
    let weight = 0;
    for (const m of group) {
      const r = refs.get(m.parent);
      if (r === undefined || r.n === 0) continue;
      const held = Math.min(m.n, 1 / rate);
      sum += held * (m.mean - r.mean);
      weight += held;
    }
    return weight === 0 ? 0 : sum / weight;
  }

  function floorTerm(gap: number): number {
    return Math.min(FLOOR_TERM_MAX, Math.max(-FLOOR_TERM_MAX, floorWeight * gap));
  }

  function shift(keys: readonly string[]): number {
    let d = 0;
    for (const k of keys) d += effects.get(k) ?? start(k);
    return d;
  }

  /**
   * Where an effect not learnt yet starts: an hour key (h<H>d<D>) at the hour before's effect on the
   * same device, any other key at 0. Competition moves through the day by the hour (the device mix,
   * who is awake), so the hour before is the best guess for the next. Started at 0, each new hour was
   * priced as the day's average while its effect was learnt: on the simulated demo market the first
   * 10 minutes of each hour priced the competition 0.28 off in log (root mean square), the rest of
   * the hour 0.16-0.21.
   */
  function start(key: string): number {
    if (key.charCodeAt(0) !== 0x68 /* h */) return 0;
    let end = 1;
    let hour = 0;
    for (let c = key.charCodeAt(end); c >= 0x30 && c <= 0x39; c = key.charCodeAt(++end)) hour = hour * 10 + (c - 0x30);
    if (end === 1 || end > 3 || hour > 23) return 0;
    return effects.get(`h${(hour + 23) % 24}${key.slice(end)}`) ?? 0;
  }

  /** Gradient of an observation's log-likelihood at a fit priced at `mu` (its mean plus offsets), into gMu and gLogSigma. */
  let gMu = 0;
  let gLogSigma = 0;
  function gradient(f: Fit, bid: number, won: boolean, mtw: number | undefined, mu: number): void {
    const sigma = Math.exp(f.logSigma);
    // Gradients scaled by sigma^2 (mu) and 1/2 (log sigma): steps comparable across segments.
    let dMu: number;
    let dLogSigma: number;
    if (mtw !== undefined && mtw > 0) {
      // Huber-clipped: one min-to-win in the wrong unit (micros, another currency) is 10-20 sigma
      // out, and its unclipped step on log sigma (x^2 / 2) sent sigma to its clamp on the pooled fit
      // and every prefix, shading bids far under the competition for hundreds of notices.
      const x = Math.min(CLIP_X, Math.max(-CLIP_X, (Math.log(mtw) - mu) / sigma));
      dMu = x * sigma;
      dLogSigma = 0.5 * (x * x - CLIPPED_X2_MEAN);
    } else {
      const z = (Math.log(bid) - mu) / sigma;
      // d/dz of log P(observation): +phi/Phi for H <= bid, -phi/(1-Phi) for H > bid.
      const g = won ? millsLower(z) : -millsLower(-z);
      dMu = -g * sigma;
      dLogSigma = -0.5 * g * z;
    }
    gMu = dMu;
    gLogSigma = dLogSigma;
  }

  /** Updates one fit on an observation. */
  function update(f: Fit, bid: number, won: boolean, mtw: number | undefined, offset: number): void {
    gradient(f, bid, won, mtw, f.mu + offset);
    const eta = Math.max(rate, 1 / (f.n + priorWeight));
    f.mu += eta * gMu;
    f.logSigma = Math.min(2, Math.max(-3, f.logSigma + eta * gLogSigma));
    f.n++;
  }

  /**
   * The most specific fit on the segment's path, once the pooled one has enough notices. A segment
   * seen only a few times is used too: it is its parent's fit shrunk toward what it saw (its start
   * and first steps, `priorWeight`), which prices a site better than its parent alone, however thin.
   */
  function fitFor(prefixes: readonly string[]): Fit | undefined {
    if (pooled.n < minObs) return undefined;
    for (let i = prefixes.length - 1; i >= 0; i--) {
      const f = fits.get(prefixes[i]);
      if (f !== undefined) return f;
    }
    return pooled;
  }

  return {
    shade(segment, valueCpmUsd, floorCpmUsd) {
      if (!(valueCpmUsd > 0)) return valueCpmUsd;
      const parsed = split(segment);
      const { keys, prefixes } = parsed;
      const offset = shift(keys);
      learnFloor(prefixes, segment, floorCpmUsd, offset);
      const f = fitFor(prefixes);
      if (f === undefined) return Math.max(valueCpmUsd, 0);
      const sigma = Math.exp(f.logSigma);
      const mu = f.mu + offset + (floorPriced(prefixes, f) ? floorTerm(floorGap(parsed)) : 0);
      const lo = Math.max(floorCpmUsd, valueCpmUsd * 1e-3);
      if (lo >= valueCpmUsd) return valueCpmUsd;
      // Golden-section search: the surplus curve is unimodal in b for a log-normal H.
      const surplus = (b: number) => (valueCpmUsd - b) * normCdf((Math.log(b) - mu) / sigma);
      let a = lo;
      let c = valueCpmUsd;
      let x1 = c - GOLDEN * (c - a);
      let x2 = a + GOLDEN * (c - a);
      let f1 = surplus(x1);
      let f2 = surplus(x2);
      for (let i = 0; i < 40 && c - a > 1e-3 * valueCpmUsd; i++) {
        if (f1 < f2) {
          a = x1;
          x1 = x2;
          f1 = f2;
          x2 = a + GOLDEN * (c - a);
          f2 = surplus(x2);
        } else {
          c = x2;
          x2 = x1;
          f2 = f1;
          x1 = c - GOLDEN * (c - a);
          f1 = surplus(x1);
        }
      }
      const best = (a + c) / 2;
      // A floor above the optimum still beats not bidding while the bid stays under the value.
      return Math.min(valueCpmUsd, Math.max(floorCpmUsd, best));
    },

    observe(segment, bidCpmUsd, won, minToWinCpmUsd) {
      if (!(bidCpmUsd > 0)) return;
      const parsed = split(segment);
      const { path, keys, prefixes } = parsed;
      const offset = shift(keys);
      // The effects and the floor's weight learn from the price the bid was shaded on (the fit that
      // prices this segment, before this observation moves it).
      const pricing = fitFor(prefixes);
      const gap = floorGap(parsed);
      const byFloor = floorPriced(prefixes, pricing);
      const term = floorTerm(gap);
      gradient(pricing ?? pooled, bidCpmUsd, won, minToWinCpmUsd, (pricing ?? pooled).mu + offset + (byFloor ? term : 0));
      const used = gMu;
      const siteOffset = offset + term;
      update(pooled, bidCpmUsd, won, minToWinCpmUsd, offset);
      if (path !== POOLED) {
        // Observed now: the segment's own fit becomes the most recent (and is not evicted below for its prefixes).
        const own = fits.get(path);
        if (own !== undefined && !own.inner) {
          leaves.delete(path);
          leaves.set(path, own);
        }
        const last = prefixes.length - 1;
        let parent = pooled;
        for (let i = 0; i <= last; i++) {
          const key = prefixes[i];
          let f = fits.get(key);
          if (f === undefined) {
            if (fits.size >= maxSegments && !evict(own)) break;
            // A new segment starts where its parent is.
            f = new Fit(parent.mu, parent.logSigma);
            fits.set(key, f);
            if (i === last) leaves.set(key, f);
            else f.inner = true;
          } else if (i < last) makeInner(key, f);
          update(f, bidCpmUsd, won, minToWinCpmUsd, i === last && i > 0 ? siteOffset : offset);
          parent = f;
        }
      }
      // Where the term is held at its bound the weight does not move it, so the notice says nothing of the weight.
      if (byFloor && term === floorWeight * gap) floorWeight = Math.min(FLOOR_WEIGHT_MAX, Math.max(-FLOOR_WEIGHT_MAX, floorWeight + effectRate * used * gap));
      for (const k of keys) {
        const e = effects.get(k);
        // Bounded as the fits are: keys come from requests (src/price/choose.ts keeps each short).
        if (e === undefined && effects.size >= maxSegments) continue;
        effects.set(k, (e ?? start(k)) + effectRate * used);
      }
    },

    model(segment) {
      const f = fits.get(split(segment).path);
      return f === undefined ? undefined : { mu: f.mu, sigma: Math.exp(f.logSigma), observations: f.n };
    },

    snapshot() {
      // The pooled fit and the prefixes first, then the sites least recently observed first: restore
      // puts them back in that order, so a smaller table keeps the most recent.
      const out: ShaderSnapshot['fits'] = [];
      for (const [k, f] of fits) if (f.inner) out.push([k, f.mu, f.logSigma, f.n]);
      for (const [k, f] of leaves) out.push([k, f.mu, f.logSigma, f.n]);
      return { fits: out, effects: [...effects], floors: [...floors].map(([k, m]) => (m.vote === undefined ? [k, m.mean, m.n] : [k, m.mean, m.n, m.vote, m.weight!])), floorWeight };
    },

    restore(s) {
      const snap = s as Partial<ShaderSnapshot> | null;
      const fitsOk =
        Array.isArray(snap?.fits) &&
        snap.fits.every((x) => Array.isArray(x) && typeof x[0] === 'string' && isLogPrice(x[1]) && isLogSigma(x[2]) && Number.isInteger(x[3]) && x[3] >= 0);
      const effectsOk = Array.isArray(snap?.effects) && snap.effects.every((x) => Array.isArray(x) && typeof x[0] === 'string' && isLogPrice(x[1]));
      const floorsOk =
        snap?.floors === undefined ||
        (Array.isArray(snap.floors) &&
          snap.floors.every(
            (x) => Array.isArray(x) && typeof x[0] === 'string' && isLogPrice(x[1]) && Number.isInteger(x[2]) && x[2] >= 1 && (x[3] === undefined || (isLogPrice(x[3]) && Number.isInteger(x[4]) && x[4]! >= 1 && x[4]! <= FLOOR_VOTE_NOTICES)),
          ));
      const weightOk = snap?.floorWeight === undefined || (typeof snap.floorWeight === 'number' && Math.abs(snap.floorWeight) <= FLOOR_WEIGHT_MAX);
      if (!fitsOk || !effectsOk || !floorsOk || !weightOk) throw new Error('not a shader snapshot');
      // Which keys are prefixes of another is not stored: it is read from the keys. Those go in
      // first, then the sites in the snapshot's order (least recently observed first; a file written
      // before that order, first come), each evicting the oldest when the table is full.
      const inner = new Set<string>([POOLED]);
      for (const [key] of snap!.fits!) {
        const prefixes = parse(key).prefixes;
        for (let i = 0; i < prefixes.length - 1; i++) inner.add(prefixes[i]);
      }
      const ordered = [...snap!.fits!.filter(([k]) => inner.has(k)), ...snap!.fits!.filter(([k]) => !inner.has(k))];
      for (const [key, mu, logSigma, n] of ordered) {
        let f = key === POOLED ? pooled : fits.get(key);
        if (f === undefined) {
          if (fits.size >= maxSegments && !evict()) continue;
          f = new Fit(mu, logSigma);
          fits.set(key, f);
        }
        if (!f.inner && !inner.has(key)) {
          leaves.delete(key);
          leaves.set(key, f);
        }
        f.mu = mu;
        f.logSigma = logSigma;
        f.n = n;
      }
      // After the loop, so that a fit learnt before the restore is marked too.
      for (const key of inner) {
        const f = fits.get(key);
        if (f !== undefined) makeInner(key, f);
      }
      for (const [key, shift] of snap!.effects!) if (effects.has(key) || effects.size < maxSegments) effects.set(key, shift);
      // Least recently seen first, as written: a smaller table keeps the most recent. Only a file with
      // no vote at all was written before the votes: in a later one, a noticed site without a vote had
      // no floor since its first notice, and casting its mean moved its parent's reference away from
      // the one written (test/shade-floor-ref.test.ts: a site's price 0.8 % off after a restart).
      const unvoted = (snap!.floors ?? []).every((x) => x[3] === undefined);
      for (const [key, mean, n, cast, weight] of snap!.floors ?? []) {
        dropSite(key);
        const m = addSite(key, mean, n);
        const prefixes = parse(key).prefixes;
        const f = fits.get(key);
        if (prefixes.length < 2) continue;
        if (cast !== undefined) vote(m, prefixes[prefixes.length - 2], weight!, cast);
        else if (unvoted && f !== undefined) vote(m, prefixes[prefixes.length - 2], Math.min(FLOOR_VOTE_NOTICES, f.n));
      }
      if (snap!.floorWeight !== undefined) floorWeight = snap!.floorWeight;
    },
  };
}

/**
 * A log-space price or shift a fit could have learnt: e^±20 CPM is 2e-9 to 5e8 USD, beyond any
 * auction. A restored 1e300 shifted every bid to a few cents (0.0341 against 10.83-11.83).
 */
function isLogPrice(x: unknown): boolean {
  return typeof x === 'number' && Math.abs(x) <= 20;
}

/** Within the clamp every update keeps a fit's log sigma in. */
function isLogSigma(x: unknown): boolean {
  return typeof x === 'number' && x >= -3 && x <= 2;
}

/** A segment's path (exchange|format|kind|site, its levels) and the context keys after '~'. */
interface Parsed {
  path: string;
  keys: string[];
  /** The path's prefixes, shortest first (the last is the path). */
  prefixes: string[];
  /** The path less its second level (the format), where it has four or more: the site in any format; else the path. */
  site: string;
}

function parse(segment: string): Parsed {
  const cut = segment.indexOf('~');
  const path = cut < 0 ? segment : segment.slice(0, cut);
  const prefixes: string[] = [];
  for (let end = path.indexOf('|'); end >= 0; end = path.indexOf('|', end + 1)) prefixes.push(path.slice(0, end));
  prefixes.push(path);
  const site = prefixes.length < 4 ? path : path.slice(0, prefixes[0].length) + path.slice(prefixes[1].length);
  return { path, keys: cut < 0 ? [] : segment.slice(cut + 1).split('~'), prefixes, site };
}

// Segments repeat (one per exchange, format, site and context; interned by the bid path): each
// notice split its segment and sliced every prefix again, ~13k instructions of a win notice.
const PARSED_MAX = 20_000;
const parsedCache = new Map<string, Parsed>();

function split(segment: string): Parsed {
  let p = parsedCache.get(segment);
  if (p === undefined) {
    // Bounded: segments come from requests.
    if (parsedCache.size >= PARSED_MAX) parsedCache.clear();
    p = parse(segment);
    parsedCache.set(segment, p);
  }
  return p;
}

/** Deletes a map's first entry (its oldest, where entries are moved to the end on use). */
function dropOldest(m: Map<string, unknown>): void {
  for (const k of m.keys()) {
    m.delete(k);
    return;
  }
}

/** A running mean of a site's floors, in log (less the context's effects), and its vote in its parent's reference. */
interface FloorMean {
  mean: number;
  n: number;
  /** Its parent path, whose reference its gap is read against. */
  parent: string;
  /** Its key in `formats` (Parsed.site). */
  site: string;
  vote?: number;
  weight?: number;
  ref?: FloorRef;
}

/** A parent's floor reference: the mean of its sites' votes, over `n` (their weights). */
interface FloorRef {
  mean: number;
  n: number;
}

/**
 * The floor weight's bound: 1 reads a site's floors as moving with its competition one for one; a
 * weight past 2 would say the competition moves twice as much as the floors, which no publisher's
 * price rule does, and it keeps a restored file's weight sane.
 */
const FLOOR_WEIGHT_MAX = 2;

/**
 * How far from its parent's reference a site's vote counts, in log: e^2 is 7.4 times, past the
 * spread of sites' competition around their parent's (0.7 in log on the test's market). A site whose
 * floors sit further out is still priced from its own mean; it only stops pulling the reference
 * further: one site moves it by at most 2 × its weight / the votes' weight.
 */
const FLOOR_VOTE_SPAN = 2;

/**
 * A site's notices past which its vote weighs no more. The parent's fit, which the term is added
 * to, is learnt from every notice, so the reference follows the sites as the notices do (one vote
 * per site, whatever its notices, priced demo seed 7 0.08 points worse); past 50 notices a site is
 * priced by its own fit, and its floors need no more say in its neighbours'.
 */
const FLOOR_VOTE_NOTICES = 50;

/**
 * The floor term's bound, in log: 0.7 is a factor of 2 either way on the site's price. The term is a
 * guess standing in for notices; past a factor of 2 a site's floors are more likely set for something
 * other than its competition (a token 0.01, a floor for a buyer's deal) than a competition that far
 * from its parent's, and the notices correct what the bound holds back. It also bounds what any
 * reference, however fed, can do to a site's price.
 */
const FLOOR_TERM_MAX = 0.7;

const GOLDEN = 0.6180339887498949;
const INV_SQRT_2PI = 0.3989422804014327;
/**
 * Where an exact observation's standardised residual is clipped. Under the fitted log-normal 0.27 %
 * of residuals lie beyond 3 sigma, so honest data is barely touched, while one observation moves
 * mu by at most 3 eta sigma and ln sigma by at most 4 eta (at the settled rate 0.02: sigma x 1.08).
 */
const CLIP_X = 3;
/**
 * E[min(x^2, CLIP_X^2)] for a standard normal x (0.995): what the clipped x^2 averages when the fit
 * is right, so that sigma's fixed point stays the true spread (Huber's proposal 2).
 */
const CLIPPED_X2_MEAN = 2 * normCdf(CLIP_X) - 1 - 2 * CLIP_X * INV_SQRT_2PI * Math.exp(-0.5 * CLIP_X * CLIP_X) + 2 * CLIP_X * CLIP_X * (1 - normCdf(CLIP_X));

/** Standard normal CDF (erfc by the Numerical Recipes Chebyshev fit, relative error < 1.2e-7). */
export function normCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const erfc =
    t *
    Math.exp(
      -x * x -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return z >= 0 ? 1 - 0.5 * erfc : 0.5 * erfc;
}

/** phi(z) / Phi(z), computed so that it stays finite far in the lower tail (where it tends to -z). */
function millsLower(z: number): number {
  if (z < -8) return -z;
  return (INV_SQRT_2PI * Math.exp(-0.5 * z * z)) / normCdf(z);
}
