import { createHmac, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { BidOutcome, Campaign, Ledger, NoticeKind, Settled, SettleOutcome, Shader } from '../types.js';
import type { ExchangeSettings } from '../config/policies.js';
import { BidderError } from '../errors/codes.js';
import type { EventLog } from '../eventlog/eventlog.js';
import type { ProfileStore } from '../features/profiles.js';
import type { FrequencyStore } from '../freqcap/index.js';
import type { Metrics } from '../metrics/metrics.js';
import type { ThompsonPacer } from '../pace/pacer.js';
import { errorAnswer, type Answer } from '../errors/answer.js';
import type { IssuedBid, IssuedBids } from './issued.js';
import { parseClaims, type NoticeClaims, type Signer } from './sign.js';
import { parseQuery, type QueryParams } from './query.js';
import { minorDigits } from '../util/currency.js';
import { primaryUserKey, userKeysOf } from '../users/keys.js';

export interface NoticeDeps {
  signer: Signer;
  /** Key for click tokens handed to advertisers (conversion postbacks). */
  secret: string;
  /**
   * Secrets `secret` replaced (settings.noticeSecretPrevious): a conversion token minted with one
   * still counts; tokens are minted with `secret` alone. (The signer takes them for the notices.)
   */
  previousSecrets?: readonly string[];
  ledger: Ledger;
  /** Told each win and click with the CTR model that priced its bid, where known (`modelOfBid`). */
  pacer: Pick<ThompsonPacer, 'onWin' | 'onLoss' | 'onClick' | 'onConversion'>;
  /**
   * The version of the CTR model serving when the bid whose notices expire at `expiresAtMs` was
   * made (its issue time is that less the notice TTL: Live.modelAt), for a bid the issued ring no
   * longer remembers or never did (past its TTL, another worker's, before a restart); undefined
   * where not known, and the notice counts under the model serving. Absent: always not known.
   */
  modelOfBid?: (expiresAtMs: number) => string | undefined;
  shader: Shader | null;
  profiles: ProfileStore;
  frequency: FrequencyStore;
  issued: IssuedBids;
  eventLog: EventLog;
  metrics: Metrics;
  campaigns: () => ReadonlyMap<string, Campaign>;
  /** Where a click on this creative goes: serving now, or removed by a recent reload. */
  landingUrl: (campaignId: string, creativeId: string) => string | undefined;
  ratesPerUsd: () => ReadonlyMap<string, number>;
  clock: () => number;
  /** Monotonic milliseconds, for the ledger calls' latency. */
  now: () => number;
  /** Longest a click stays eligible for a conversion postback. */
  conversionWindowMs: number;
  /**
   * The ledger's `retentionMs` (BudgetLedger): this long past its bid's notice expiry the ledger
   * still tells whether the ad ran, and a click heard until then is counted if it did (a page left
   * open, then clicked). Absent, 0: a click counts only within its expiry.
   */
  ledgerRetentionMs?: number;
  /** The exchange's settings as they stand (a bid's silence is read by its exchange's `lossNotices`). */
  exchange: (name: string) => ExchangeSettings | undefined;
  /**
   * The other bidders of this process (worker threads sharing its port: a bid's notices reach any
   * of them). A notice for a bid this bidder does not remember is told to them, so the one that bid
   * knows it was heard (its silence is then a loss on an exchange without loss notices) and its
   * shader learns the outcome (only the bidder that bid knows the bid's segment). In a fleet, the
   * other processes too (src/fleet/peers.ts): a load balancer sends a notice to any of them.
   */
  peers?: NoticePeers;
  logger: Pick<Logger, 'warn'>;
}

/** See `NoticeDeps.peers`. `won` and `mtwUsd` where the notice teaches the shader (a win, a loss on price). */
export interface NoticePeers {
  tell(bidId: string, won?: boolean, mtwUsd?: number): void;
  /** The process's workers share one: what they tell each other already, the fleet's peers do not apply again. */
  readonly group?: string;
  /** Called as the handler closes: what was told this turn still goes out. */
  close?(): void;
}

const OK: Answer = Object.freeze({ status: 200, body: '{"ok":true}' });
// A notice whose settlement failed is tried again here after 1, 2, 4, 8 and 16 s (Redis back from
// a failover, a journal's disk back), while neither the exchange's retry nor an earlier one has
// counted it.
const RETRY_FIRST_MS = 1000;
const RETRY_ATTEMPTS = 5;
const RETRY_TICK_MS = 250;
const RETRIES_PER_TICK = 1000;
// Beyond this many waiting, a failed notice is left to the exchange's retry (counted `abandoned`).
const MAX_PENDING_RETRIES = 100_000;
// An exchange on `lossNotices: true` is named in a warning, and one on `auto` starts taking its
// silent bids as losses, once this many of its first-price bids have expired unheard with no loss
// notice from it: so many bids and not one loss heard means its losses go unsent, not that none
// were lost. (Second-price bids are no evidence: an exchange may send no loss notice there.)
const SILENT_BIDS_EVIDENCE = 1000;
// Clicks waiting for their bid's win, at most this many (some 200 bytes each): past it the oldest
// is dropped, so clicks on bids that never win (their markup in a Prebid.js page) cannot grow it.
const MAX_HELD_CLICKS = 10_000;
// Bids whose impression this process counted against their user's caps, the latest this many (some
// 200 bytes each, the bid id's own copy: parseClaims): a notice refused as late counts one at most once.
const MAX_CAP_COUNTED = 100_000;
// The longest notice query read, in characters: a signed URL with the exchange's macros filled is
// some 300, and at most about 700 with ids of the most characters the policies admit. Its length is the sender's to pick, and each notice's work and any retry held for it
// grow with it (review soak: 40,000-character wins were answered 200).
const MAX_NOTICE_QUERY = 8192;
const LEDGER_RETRY: Answer = Object.freeze(errorAnswer(new BidderError('LEDGER_UNAVAILABLE')));
// Prices as exchanges write them: a decimal, with or without digits after the point, perhaps
// with an exponent ("25", "25.", "2.5e+1"), or with a decimal comma ("25,00").
const PRICE = /^\d+(\.\d*)?([eE][+-]?\d+)?$/;
const COMMA_PRICE = /^\d+,(\d+)$/;

/**
 * A reported price in `currency`, or NaN when it cannot be read (an unexpanded macro, hex,
 * "1e999"). A comma is a decimal comma only where the currency has that many minor digits: "3,000"
 * yen (none) or dollars (two) is a thousands separator or a typo, and read as a decimal it
 * recorded a thousandth of what the exchange billed; unreadable, it settles at the bid.
 */
export function parsePrice(raw: string, currency: string): number {
  let v = NaN;
  if (PRICE.test(raw)) v = Number(raw);
  else {
    const comma = COMMA_PRICE.exec(raw);
    if (comma && 10 ** -comma[1].length >= priceRounding(currency) - 1e-12) v = Number(raw.replace(',', '.'));
  }
  return Number.isFinite(v) ? v : NaN;
}

/**
 * Exchanges round a clearing price to the minor unit of the bid's currency (a cent; a whole yen),
 * up or half up: a price up to one minor unit over the signed bid is that bid, rounded. Anything
 * higher settles at the bid too, and is counted (bidder_notice_price_above_bid_total). The ISO 4217
 * minor units as the runtime's Intl knows them (2 where unknown).
 */
export function priceRounding(currency: string): number {
  return 10 ** -minorDigits(currency);
}

/**
 * Whether a loss notice's `${AUCTION_LOSS}` (AdCOM loss reason codes) says the bid lost on price:
 * 100 below the auction floor, 101 below the deal floor, 102 outbid, 103 outbid by a deal; or says
 * nothing (absent, unexpanded). Invalid responses (1-10), a blocked seat (104), filtered creatives
 * (200-213) and exchange-specific codes (1000+) are not.
 */
export function lostOnPrice(raw: string | null): boolean {
  if (raw === null || !/^\d+$/.test(raw)) return true;
  const code = Number(raw);
  return code >= 100 && code <= 103;
}

/** The notice's `mtw` (${AUCTION_MIN_TO_WIN}, in the bid's currency) in USD CPM; undefined when absent, unexpanded or 0. */
function minToWin(q: QueryParams, rate: number, currency: string): number | undefined {
  const mtw = parsePrice(q.get('mtw') ?? '', currency) / rate;
  return mtw > 0 ? mtw : undefined;
}

// A loss's min-to-win this many times the bid is taken for one in the wrong unit (micros, cents, a
// yen figure for a dollar bid) and learnt as a plain loss at the bid. A factor 20 (3 log units: 6 to
// 12 sigma of the spreads the shader learns) rarely refuses a real auction, and what one loses is
// how far past the bid the competition was, not the outcome. A win's far below its bid is kept (the
// shader's clip bounds its step): bids are unshaded until the shader has notices, and a campaign
// worth 20x its market wins at 1/20 of its bid; those wins are what teach the shader to shade.
const MTW_PLAUSIBLE_FACTOR = 20;

/**
 * The event log's record of a notice, built without spreads: a field it lacks is undefined, which
 * the log leaves out as JSON does.
 */
function logNotice(log: EventLog, type: NoticeKind, ts: number, c: NoticeClaims, priceCpmUsd?: number, minToWinCpmUsd?: number, lossReason?: number, unpriced = false, overspend = false): void {
  log.append({ type, ts, bidId: c.bidId, campaignId: c.campaignId, creativeId: c.creativeId, priceCpmUsd, lossReason, minToWinCpmUsd, unpriced: unpriced || undefined, overspend: overspend || undefined });
}

/**
 * What a bid of this process that expired with no notice heard means, by its exchange's
 * `lossNotices` (the notice handler's `unheard`; src/sim/pacing.ts runs the same rule):
 * `false`, a loss at its bid; `true`, nothing (an exchange that sends no loss notice for 1,000
 * first-price bids is named in a warning); `auto`, nothing until that same evidence, then a loss,
 * until the exchange's first loss notice (then nothing again, for good: an exchange that sends
 * some loss notices leaves a silent bid's outcome unknown, a win whose notices were lost as
 * likely as a loss). Each switch is logged once.
 *
 * The bids that expired unheard while the evidence built up are not learnt after the switch: at
 * the switch they are up to the 1,000 bids' span old (an hour on a small exchange), and learnt
 * then they would land together, in the pacer's current minute and the shader's newest steps, a
 * burst of past prices where the outcomes it now learns come one bid at a time; nor would they be
 * losses for certain, the evidence being only that no loss notice came.
 *
 * Inferring needs each bid's notices back at the process that made it. Where a notice, in time,
 * of a bid this process did not make reaches it and it has no notice peers to tell, that may be
 * another process behind its notice URL without Redis (each with its own ledger), whose own bids'
 * notices then come here as much as this one's go there, a win heard there being a loss here; or
 * a bid of the run before a restart still in time (a longer noticeTtlMs then, a wall clock stepped
 * back). `auto` stays off (`foreignNotice`) until that bid's expiry plus this process's notice TTL,
 * by when its own bids made while such notices came have expired too: a shared URL keeps sending
 * them and keeps it off, a restart's leftovers stop. Each switch off and back on is logged. With
 * peers (a Redis fleet, `serve --workers`) a notice heard elsewhere reaches the bidding process
 * and marks its bid heard, as `false` has it.
 *
 * `clock` reads the time `foreignNotice`'s bound is against (the simulation hears no such notice).
 */
export function createLossInference(logger: { warn(obj: object, msg: string): void }, clock?: () => number) {
  // Exchanges a loss notice has come from, and the first-price bids expired unheard of the others.
  const sendsLosses = new Set<string>();
  const silentBids = new Map<string, number>();
  // Until when foreign notices keep `auto` off, and the exchanges it would infer on but for them
  // (their switch back on is logged).
  let foreignUntil = -Infinity;
  const heldOff = new Set<string>();
  const foreign = (): boolean => clock !== undefined && clock() < foreignUntil;
  const evidenced = (exchange: string): boolean => !sendsLosses.has(exchange) && (silentBids.get(exchange) ?? 0) >= SILENT_BIDS_EVIDENCE;
  const inferring = (exchange: string): boolean => evidenced(exchange) && !foreign();
  return {
    /** A loss notice from `exchange` (any: a duplicate or one not on price says it sends them too). */
    lossHeard(exchange: string, setting: boolean | 'auto' | undefined): void {
      if (setting === 'auto' && inferring(exchange)) {
        logger.warn({ exchange }, `exchange ${exchange} sent a loss notice: on lossNotices auto, bids that expire unheard are no longer taken as lost`);
      }
      sendsLosses.add(exchange);
    },
    /**
     * A notice, in time, for a bid this process does not remember, on a process with no notice
     * peers, once a bid of its own has expired: `auto` is off until `untilMs` (its expiry plus this
     * process's notice TTL), or a later such notice's.
     */
    foreignNotice(untilMs: number): void {
      const was = [...silentBids.keys()].filter(inferring);
      foreignUntil = Math.max(foreignUntil, untilMs);
      if (was.length === 0) return;
      for (const ex of was) heldOff.add(ex);
      logger.warn(
        { exchanges: was, untilMs: foreignUntil },
        `a notice for a bid this process did not make reached it in time, and it has no notice peers (Redis) to pass notices on (another process sharing the notice URL, or a bid of a run before a restart): on lossNotices auto, bids that expire unheard are not taken as lost on ${was.join(', ')} until ${new Date(foreignUntil).toISOString()} or a later such notice's expiry and TTL (a win heard by another process would be a loss here)`,
      );
    },
    /** Whether a bid of `exchange` that expired unheard is taken as lost at its bid. */
    unheard(exchange: string, setting: boolean | 'auto', firstPrice: boolean): boolean {
      if (setting === false) return true;
      if (sendsLosses.has(exchange)) return false;
      if (setting === 'auto' && inferring(exchange)) {
        if (heldOff.delete(exchange)) {
          logger.warn({ exchange }, `notices for bids this process did not make have stopped (the last one's expiry and this process's notice TTL passed at ${new Date(foreignUntil).toISOString()}): on lossNotices auto, bids of ${exchange} that expire unheard are taken as lost again, until a loss notice comes`);
        }
        return true;
      }
      if (!firstPrice) return false;
      const n = (silentBids.get(exchange) ?? 0) + 1;
      silentBids.set(exchange, n);
      if (n !== SILENT_BIDS_EVIDENCE) return false;
      if (setting === true) {
        logger.warn(
          { exchange, bids: n },
          `exchange ${exchange} has sent no loss notice for ${n} first-price bids: if it never sends them, set lossNotices: false in exchanges.yaml (without losses the shader learns from wins alone and shades bids down until they stop winning)`,
        );
      } else if (foreign()) {
        heldOff.add(exchange);
        logger.warn(
          { exchange, bids: n, untilMs: foreignUntil },
          `exchange ${exchange} has sent no loss notice for ${n} first-price bids, but a notice for a bid this process did not make reached it in time, and it has no notice peers (Redis) to pass notices on (another process sharing the notice URL, or a bid of a run before a restart): lossNotices auto takes no silent bid as lost here while such notices keep coming, until ${new Date(foreignUntil).toISOString()} so far (if processes share the notice URL, route each notice to the process that bid, or give each its own publicUrl, and set lossNotices: false)`,
        );
      } else {
        logger.warn(
          { exchange, bids: n },
          `exchange ${exchange} has sent no loss notice for ${n} first-price bids: on lossNotices auto, its bids that expire unheard are taken as lost from now on, until a loss notice comes (set lossNotices: false in exchanges.yaml if it never sends them, true if it does)`,
        );
      }
      return false;
    },
  };
}

/**
 * Win, billing, impression, loss, click and conversion notices. Money moves only through a valid
 * signature, at a clearing price no higher than the signed bid, and once per bid id (the ledger is
 * idempotent); a win the ledger knows is always recorded, past the budget as overspend. The price
 * comes from the most authoritative report heard: the exchange's billing notice over its win
 * notice over the markup's impression tracker, which is public and so moves money only at the
 * reserved amount (the bid), never at a price it reports. A loss moves the pacer and the shader
 * only when it released a held bid: a repeated loss, or one after the win, teaches nothing. Clicks
 * and conversions are deduplicated in the ledger's store.
 */
export function createNoticeHandler(deps: NoticeDeps) {
  const { metrics } = deps;
  // Reports whose settlement failed, by bid and report level (`bid\nsource`), the ledger perhaps
  // having recorded it all the same (a Redis reply past its timeout). The notice is answered 503
  // and tried again here too, since not every exchange retries a notice. (A settlement the
  // journal has written is counted once written, before its sync, see `Settled.written`.)
  // Whichever try of it finds the settlement made by this process's failed call (a duplicate the
  // ledger's `claim` owns up to, whether the bidder's own try or the exchange's, even after the
  // bidder gave up) counts the impression (metrics, event log, pacer, cap), once. A retry that
  // reaches another process of a fleet settles nothing twice and is not counted there: this
  // process counts it. An entry is the retry waiting; one in flight has left the map.
  const pending = new Map<string, { kind: NoticeKind; query: string; attempt: number; dueMs: number }>();
  let retryTimer: NodeJS.Timeout | null = null;
  let closed = false;
  function retryLater(key: string, kind: NoticeKind, query: string, attempt: number): void {
    if (closed) return;
    if (attempt > RETRY_ATTEMPTS || (pending.size >= MAX_PENDING_RETRIES && !pending.has(key))) {
      metrics.notice(kind, 'abandoned');
      return;
    }
    pending.set(key, { kind, query, attempt, dueMs: deps.now() + RETRY_FIRST_MS * 2 ** (attempt - 1) });
    if (retryTimer === null) {
      retryTimer = setInterval(retryDue, RETRY_TICK_MS);
      retryTimer.unref();
    }
  }
  function retryDue(): void {
    const now = deps.now();
    let sent = 0;
    for (const [key, r] of pending) {
      if (r.dueMs > now) continue;
      pending.delete(key);
      void handleNotice(r.kind, r.query, false, r.attempt).catch(() => {});
      // A ledger back from an outage takes the backlog a tick's share at a time.
      if (++sent >= RETRIES_PER_TICK) break;
    }
    if (pending.size === 0 && retryTimer !== null) {
      clearInterval(retryTimer);
      retryTimer = null;
    }
  }
  // Tokens are minted with the first key and checked with each: a rotation keeps the tokens its
  // previous secrets minted for their window.
  const tokenKeys = [deps.secret, ...(deps.previousSecrets ?? [])].map((s) => Buffer.from(`click-token:${s}`));
  const inference = createLossInference(deps.logger, deps.clock);
  // Before the first bid of this process expired, an in-time notice it does not remember is most
  // likely of the run before a restart; after, it may be another process's (`foreignNotice`).
  let ownBidExpired = false;
  const retentionMs = deps.ledgerRetentionMs ?? 0;
  /**
   * Until when a click on this bid can be counted: while the ledger remembers the bid (a win it
   * settles, late too, is learnt by a click heard before it), so its click's dedup key, its held
   * click and a conversion token's record last as long.
   */
  const clickUntil = (c: NoticeClaims): number => c.expiresAtMs + retentionMs;
  // First clicks on bids no win had been heard for, by bid id, in arrival order: learnt when this
  // process hears the win (a win notice reordered behind the click, or one past the notices'
  // expiry the ledger still settles), forgotten at `clickUntil`, at a loss, or when the map is full.
  interface HeldClick {
    campaignId: string;
    creativeId: string;
    userKey: string | undefined;
    /** The CTR model that priced the bid, where known (IssuedBid.ctrModel, else NoticeDeps.modelOfBid). */
    ctrModel: string | undefined;
    until: number;
    /**
     * A click heard past its expiry, on a bid not settled: it took no dedup key and is not logged
     * (most such bids lost). Counted when its win is heard, if no click on the bid took the key first.
     */
    uncounted?: NoticeClaims;
  }
  const heldClicks = new Map<string, HeldClick>();
  function holdClick(claims: NoticeClaims, userKey: string | undefined, ctrModel: string | undefined, late: boolean): HeldClick {
    const now = deps.clock();
    for (const [bidId, h] of heldClicks) {
      if (h.until >= now && heldClicks.size < MAX_HELD_CLICKS) break;
      heldClicks.delete(bidId);
    }
    const held: HeldClick = { campaignId: claims.campaignId, creativeId: claims.creativeId, userKey, ctrModel, until: clickUntil(claims), uncounted: late ? claims : undefined };
    heldClicks.set(claims.bidId, held);
    return held;
  }
  /**
   * A held click whose bid's win settled: learnt. One heard past its expiry takes its dedup key
   * only now, and is learnt and logged only if it gets it: had it taken the key at its arrival, a
   * win heard by another process of a fleet, after a restart or after the click was dropped from
   * `heldClicks` left the key taken by a click nobody counted, and the user's next click, a
   * duplicate on a settled bid, minted a token whose conversion counted with no click record.
   * Whichever process first counts a click on the bid owns the key. Never throws: a win that calls
   * it has settled.
   */
  async function learnHeld(held: HeldClick, at: number): Promise<void> {
    if (held.uncounted !== undefined) {
      const lt = deps.now();
      try {
        const first = await deps.ledger.once(`c:${held.uncounted.bidId}`, held.until);
        metrics.ledger('state', (deps.now() - lt) / 1000, false);
        if (!first) return;
      } catch {
        // Not counted, as a click whose dedup fails.
        metrics.ledger('state', (deps.now() - lt) / 1000, true);
        return;
      }
      logNotice(deps.eventLog, 'click', at, held.uncounted);
    }
    learnClick(held.campaignId, held.creativeId, held.userKey, held.ctrModel, at);
  }
  /**
   * A win that settled while its click awaited the ledger (read its outcome as held, then awaited
   * the dedup) looked for the click before it was held, and went by: the outcome is read again once
   * the click is held. Learnt once: whichever of the win and this read finds it held takes it out.
   */
  async function learnIfWonMeanwhile(bidId: string, held: HeldClick, at: number): Promise<void> {
    const lt = deps.now();
    let outcome: BidOutcome;
    try {
      outcome = await deps.ledger.bidOutcome(bidId);
      metrics.ledger('state', (deps.now() - lt) / 1000, false);
    } catch {
      // Still held: a win heard later learns it.
      metrics.ledger('state', (deps.now() - lt) / 1000, true);
      return;
    }
    if (outcome !== 'settled' || heldClicks.get(bidId) !== held) return;
    heldClicks.delete(bidId);
    await learnHeld(held, at);
  }
  // See `countImpression`.
  const capCounted = new LRUCache<string, true>({ max: MAX_CAP_COUNTED });
  /**
   * The user's impression of the bid's campaign, in their frequency caps and profile; never throws
   * (a win that calls it has settled).
   */
  async function countImpression(claims: NoticeClaims, issued: IssuedBid | undefined, userKey: string): Promise<void> {
    capCounted.set(claims.bidId, true);
    // Neither may a profile store that throws (a full Map), which skipped the cap count and the
    // event log and answered 500 for a settled win; counted as the cap's failures are.
    try {
      deps.profiles.recordImpression(primaryUserKey(userKey), claims.campaignId, issued?.categories ?? []);
    } catch {
      metrics.ledger('frequency', 0, true);
    }
    // The spend is settled; a cap count lost to a Redis outage must not fail the notice. Under each
    // of the user's keys (one per kind of id the bid request had): a later request with any one of
    // them counts this impression.
    const keys = userKeysOf(userKey);
    const counted = await Promise.allSettled(keys.map((k) => deps.frequency.record(k, claims.campaignId)));
    if (counted.some((r) => r.status === 'rejected')) metrics.ledger('frequency', 0, true);
  }
  /**
   * A notice refused as late (410, nothing settled: a render past the bid's expiry, an exchange's
   * notice of a bid the ledger has forgotten), its signature verified: the ad ran all the same, and
   * the user saw it. Counted against the user's caps (and profile) as a settled one is, else a cap
   * of 1 bought the user again at their next request. Once per bid in this process, and not for a
   * bid this process counted in time; `render`: nor for one the ledger has settled (its notice
   * counted it) or released (a loss: the ad did not run), which a render is asked about. Either
   * way it fails closed, a user capped early: a retry of the notice reaching another process of a
   * fleet counts again there, as does a notice heard after the ledger forgot a bid whose win
   * counted; a replayed signed URL, however old, can only count a cap, never move money.
   */
  async function countLate(claims: NoticeClaims, issued: IssuedBid | undefined, render: boolean): Promise<void> {
    const userKey = issued?.userKey || claims.userKey;
    if (!userKey || capCounted.has(claims.bidId)) return;
    capCounted.set(claims.bidId, true);
    if (render) {
      const lt = deps.now();
      try {
        const outcome = await deps.ledger.bidOutcome(claims.bidId);
        metrics.ledger('state', (deps.now() - lt) / 1000, false);
        if (outcome === 'settled' || outcome === 'released') return;
      } catch {
        // Counted: a cap held one impression too early over a user bought once too often.
        metrics.ledger('state', (deps.now() - lt) / 1000, true);
      }
    }
    await countImpression(claims, issued, userKey);
  }
  /**
   * What a click on an ad that ran teaches: the clicks counted, the pacer's calibration (under
   * `ctrModel`, the model that priced the bid, where known), the user's profile.
   */
  function learnClick(campaignId: string, creativeId: string, userKey: string | undefined, ctrModel: string | undefined, at: number): void {
    metrics.click(campaignId);
    deps.pacer.onClick(campaignId, creativeId, at, ctrModel);
    const campaign = deps.campaigns().get(campaignId);
    if (!userKey || !campaign) return;
    // A profile store that throws (a full Map) must not fail a win notice the ledger has settled,
    // which learns a click that waited for it; counted as the cap's failures are.
    try {
      deps.profiles.recordClick(primaryUserKey(userKey), campaign.cat);
    } catch {
      metrics.ledger('frequency', 0, true);
    }
  }

  /** A notice a peer heard for a bid of this bidder (`NoticePeers.tell`). */
  function fromPeer(bidId: string, won?: boolean, mtwUsd?: number): void {
    deps.issued.heard(bidId);
    if (won === undefined) return;
    const issued = deps.issued.get(bidId);
    if (!issued || issued.segment === '') return;
    // The hearing process checked the min-to-win against the bid it read from the signed URL; a
    // peer's message (a worker's, or another process's over Redis, which anyone who can publish
    // there could send) is checked again against the bid as made, as a notice's is.
    const bid = issued.bidCpmUsd;
    const plausible = mtwUsd !== undefined && Number.isFinite(mtwUsd) && mtwUsd > 0 && (won ? mtwUsd <= bid * (1 + 1e-9) : mtwUsd <= MTW_PLAUSIBLE_FACTOR * bid);
    deps.shader?.observe(issued.segment, bid, won, plausible ? mtwUsd : undefined);
  }

  /**
   * A described bid of this process whose notice TTL passed with no notice heard (src/notices/issued.ts).
   * Where its exchange's `lossNotices` takes it as lost (`createLossInference`), it lost at its
   * bid: the shader and pacer learn it as they learn a loss notice without min-to-win.
   */
  function unheard(campaignId: string, creativeId: string, exchange: string, segment: string, bidCpmUsd: number, firstPrice: boolean): void {
    ownBidExpired = true;
    const ex = deps.exchange(exchange);
    if (ex === undefined || !inference.unheard(exchange, ex.lossNotices, firstPrice)) return;
    metrics.lossInferred(exchange);
    deps.pacer.onLoss(campaignId, creativeId, bidCpmUsd, undefined, deps.clock());
    if (segment !== '') deps.shader?.observe(segment, bidCpmUsd, false);
  }

  /**
   * The conversion token a click hands the landing page: valid for the conversion window from the
   * click, and carrying how long its bid's conversion must be remembered: until the last token any
   * click on that bid could mint expires (a repeat click mints another, later one, up to
   * `clickUntil`). `won`: the ledger had the bid settled (won) at the click, 1, or not yet, 0 (the
   * conversion asks again).
   */
  function clickToken(c: NoticeClaims, won: boolean): string {
    const payload = Buffer.from(JSON.stringify([c.bidId, c.campaignId, c.creativeId, deps.clock() + deps.conversionWindowMs, clickUntil(c) + deps.conversionWindowMs, won ? 1 : 0])).toString('base64url');
    return `${payload}.${tokenMac(tokenKeys[0], payload).toString('base64url')}`;
  }

  function refuse(kind: NoticeKind, result: 'forged' | 'expired' | 'bad_price' | 'malformed' | 'lost', err: BidderError): Answer {
    metrics.notice(kind, result);
    return errorAnswer(err);
  }

  async function conversion(q: QueryParams): Promise<Answer> {
    const token = q.get('clk') ?? '';
    const parts = token.split('.');
    const [payload, sig] = parts;
    // Exactly payload.signature: anything after a second dot would ride along unsigned.
    if (parts.length !== 2 || !payload || !sig) return refuse('conversion', 'malformed', new BidderError('NOTICE_MALFORMED', 'clk'));
    const given = Buffer.from(sig, 'base64url');
    if (given.length !== TOKEN_MAC_BYTES || !tokenKeys.some((key) => timingSafeEqual(given, tokenMac(key, payload)))) return refuse('conversion', 'forged', new BidderError('NOTICE_BAD_SIGNATURE'));
    let fields: [string, string, string, number, number?, number?];
    try {
      fields = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return refuse('conversion', 'malformed', new BidderError('NOTICE_MALFORMED', 'clk'));
    }
    // A token minted before it carried its bid's last expiry is remembered until its own.
    const [bidId, campaignId, creativeId, until, keepUntil = until, won] = fields;
    if (deps.clock() > until) return refuse('conversion', 'expired', new BidderError('NOTICE_EXPIRED'));
    // Only an ad that ran converts. The click URL is in the markup of every bid, won or not, so
    // anyone shown a bid could click it and post a conversion, which teaches the pacer's
    // calibration a conversion rate that prices CPA bids up. A token minted at a click on a bid the
    // ledger had not settled asks it now: the win may have come after the click, and the ledger
    // remembers a bid for 2 x noticeTtlMs past its notices' expiry; later, it is refused. Tokens
    // minted before they carried the mark are counted as they were, for the conversion window.
    if (won === 0) {
      let outcome: BidOutcome;
      const lt = deps.now();
      try {
        outcome = await deps.ledger.bidOutcome(bidId);
        metrics.ledger('state', (deps.now() - lt) / 1000, false);
      } catch {
        metrics.ledger('state', (deps.now() - lt) / 1000, true);
        return LEDGER_RETRY;
      }
      if (outcome !== 'settled') return refuse('conversion', 'lost', new BidderError('CONVERSION_NOT_WON'));
    }
    // Deduplicated in the ledger's store (journal or Redis): a restart or another process of the
    // fleet does not count the same bid's conversion again, from this token or a later click's.
    let first: boolean;
    const ot = deps.now();
    try {
      first = await deps.ledger.once(`v:${bidId}`, Math.max(until, keepUntil));
      metrics.ledger('state', (deps.now() - ot) / 1000, false);
    } catch {
      metrics.ledger('state', (deps.now() - ot) / 1000, true);
      return LEDGER_RETRY;
    }
    if (!first) {
      metrics.notice('conversion', 'duplicate');
      return OK;
    }
    metrics.notice('conversion', 'ok');
    metrics.conversion(campaignId);
    // The token's expiry is its click's time plus the conversion window.
    deps.pacer.onConversion(campaignId, creativeId, deps.clock(), until - deps.conversionWindowMs);
    deps.eventLog.append({ type: 'conversion', ts: deps.clock(), bidId, campaignId, creativeId });
    return OK;
  }

  /**
   * A notice of a bid answered to a `test: 1` request: acknowledged and counted, and nothing else —
   * no reservation was made for it, so nothing settles or is released, and no pacer, shading,
   * profile or event-log record learns from it. A click still reaches the landing page.
   */
  function testNotice(kind: NoticeKind, claims: NoticeClaims): Answer {
    metrics.notice(kind, 'test');
    if (kind !== 'click') return OK;
    const landing = deps.landingUrl(claims.campaignId, claims.creativeId);
    if (landing === undefined) return refuse(kind, 'malformed', new BidderError('NOTICE_MALFORMED', 'unknown creative'));
    return { status: 302, body: '', headers: { location: landing } };
  }

  /**
   * `prefetch`: the request says it is a browser's or a link expander's prefetch (`Sec-Purpose`,
   * `Purpose`), not a user's click: the landing page is answered, nothing is counted and no token
   * minted, and the answer is not to be stored, so the user's own click comes back to be counted.
   */
  async function handleNotice(kind: NoticeKind, query: string, prefetch = false, attempt = 0): Promise<Answer> {
    // A conversion keeps nothing of its query (its fields are the token's) and its sender appends what it likes.
    if (query.length > MAX_NOTICE_QUERY && kind !== 'conversion') return refuse(kind, 'malformed', new BidderError('NOTICE_MALFORMED', `query longer than ${MAX_NOTICE_QUERY} characters`));
    const q = parseQuery(query);
    if (kind === 'conversion') return conversion(q);
    // The exchange's URLs carry a tag for their own route (a win URL is no billing notice); click,
    // impression-tracker and player-event URLs sit in the markup, so they carry a public signature
    // (the impression tracker's its own) and no price.
    const exchange = kind === 'win' || kind === 'billing' || kind === 'loss';
    const scope = exchange ? kind : kind === 'impression' ? 'impression' : 'click';
    const parsed = parseClaims(q, !exchange);
    if (!parsed) return refuse(kind, 'malformed', new BidderError('NOTICE_MALFORMED'));
    const { claims, sig } = parsed;
    if (!deps.signer.verify(claims, sig, scope)) return refuse(kind, 'forged', new BidderError('NOTICE_BAD_SIGNATURE'));
    // Whatever comes of it, the bid's outcome is no longer unknown; a loss notice, whatever it
    // releases, says its exchange sends them.
    const known = deps.issued.heard(claims.bidId);
    if (!known) deps.peers?.tell(claims.bidId);
    if (kind === 'loss') inference.lossHeard(claims.exchange, deps.exchange(claims.exchange)?.lossNotices);
    if (scope === 'click' && kind !== 'click' && kind !== 'impression') {
      // VAST tracking (start, complete) and error URLs: counted, nothing else depends on them.
      metrics.notice(kind, claims.test ? 'test' : 'ok');
      return OK;
    }
    if (claims.test) return testNotice(kind, claims);
    // Past its expiry a notice still reaches the ledger, which settles a late win only while the
    // budget has room (the exchange bills it either way); it never moves anything twice. Read as
    // it arrives: the ledger's answer may come after the expiry.
    const late = deps.clock() > claims.expiresAtMs;
    // (A bid this process made and dropped at the ring's cap before its expiry reads as another's
    // too: `auto` is then off while such drops go on.) The ledger's retention is at least the
    // notice TTL its reservations are held for (the TTL itself is not passed to the handler): past
    // it, own bids made while this notice could come have expired.
    if (!known && !late && ownBidExpired && deps.peers === undefined) inference.foreignNotice(claims.expiresAtMs + retentionMs);
    // The rate the bid was priced at (signed), so a currency reload since changes nothing.
    const rate = claims.rate ?? deps.ratesPerUsd().get(claims.cur);
    if (rate === undefined && exchange) return refuse(kind, 'malformed', new BidderError('NOTICE_MALFORMED', 'currency'));
    const issued = deps.issued.get(claims.bidId);
    // The model that priced the bid, for the win and the click: the ring's record, else the model
    // serving when the bid was made. Without the latter, a win heard in time went to the model left
    // and its click, heard past the ring's TTL (clicks count up to the ledger's retention), to the
    // model serving: one had an impression without its click, the other a click without one.
    const ctrModel = issued?.ctrModel ?? deps.modelOfBid?.(claims.expiresAtMs);

    if (kind === 'win' || kind === 'billing' || kind === 'impression') {
      // The impression tracker reports no price: the ledger settles it at the reserved amount, the
      // bid, and tells what that was (this process may not have issued the bid).
      const render = kind === 'impression';
      // Past its expiry a render is not heard (the exchange's own late notices are), but for its user's caps.
      if (render && late) {
        await countLate(claims, issued, true);
        return refuse(kind, 'expired', new BidderError('NOTICE_EXPIRED'));
      }
      const settled: Settled = { usd: NaN };
      let priceUsd = NaN;
      // A signed exchange notice whose price cannot be read (a macro the exchange left unexpanded,
      // a form no parser should guess at) still says the impression was billed: it settles like a
      // render, at the reserved amount and with the least authority, so a priced notice corrects it.
      let unpriced = false;
      if (!render) {
        // A query's raw '+' reads as a space: an exponent written "1.5e+1" arrives as "1.5e 1".
        // Only a price holding a space can need it, and the regex replace costs ~1k instructions.
        const given = q.get('price') ?? '';
        const raw = given.indexOf(' ') < 0 ? given : given.replace(/([eE]) (\d)/, '$1+$2');
        let price = parsePrice(raw, claims.cur);
        if (Number.isNaN(price)) unpriced = true;
        else if (price > claims.bidPrice) {
          // No auction clears above the bid, yet the exchange says it billed the impression at that
          // price (Prebid Server after a bid adjustment factor over 1, or a conversion into another
          // currency; a unit it got wrong). Refused, it was never recorded: it settles at the bid,
          // the most the bid reserved and the most a page that can edit the URL could move, and
          // beyond a rounding of the price it is counted by exchange, for the reconciliation. Any
          // amount over is capped, an ulp too: the ledger rounds to the micro-dollar, and a bid of
          // 0.5005 CPM reserves 500 micros where 0.5005000000000001 settles 501, refused as over
          // the reservation (1.23 % of 4-decimal USD prices one ulp up: an exchange converting the
          // bid into its currency and back).
          if (price > claims.bidPrice + priceRounding(claims.cur) + 1e-9) metrics.priceAboveBid(claims.exchange);
          price = claims.bidPrice;
        }
        priceUsd = price / rate!;
      }
      const markup = render || unpriced;
      // Where the exchange billed on its billing notice when the bid was made (signed `bb=1`), the
      // win notice is counted and settles nothing: the reservation stays for the billing notice, or
      // is released at expiry. Not in the event log either, whose wins the report counts as
      // impressions bought. Without the claim the exchange billed on the win then, whatever a reload
      // has made of it since: a bid made under `billsOn: win` and won after a reload to `billing`
      // was left unrecorded while the exchange billed it.
      if (kind === 'win' && claims.billing === true) {
        metrics.notice(kind, 'unbilled');
        return OK;
      }
      let outcome: SettleOutcome;
      // A settlement the journal has written, its sync still to come: counted at once (the
      // ledger says so, `Settled.written`), since a process killed during the sync leaves the
      // record, which replay applies, and the exchange's retry after the restart is a duplicate
      // that counts nothing. The answer waits for the sync: OK, or where it failed (the record
      // stands, see UnconfirmedSettlement) "retry", whose retry is that duplicate.
      let synced: Promise<Answer> | undefined;
      const source = markup ? 'markup' : kind;
      const key = `${claims.bidId}\n${source}`;
      // The exchange's retry of a report that failed here takes the place of the bidder's own.
      if (attempt === 0) pending.delete(key);
      const lt = deps.now();
      const timed = (failed: boolean) => metrics.ledger('settle', (deps.now() - lt) / 1000, failed);
      try {
        // Within its signed expiry a bid unknown to the ledger was never reserved here (the ledger
        // remembers a bid it settled until past that expiry, which it is told here): another bidder
        // sharing this URL without a shared ledger issued it, or its reservation was lost. The
        // exchange bills it, so it is recorded.
        const call = deps.ledger.settle(claims.bidId, priceUsd / 1000, source, late ? undefined : claims.campaignId, settled, claims.expiresAtMs);
        outcome = await new Promise<SettleOutcome>((resolve, reject) => {
          settled.written = (o) => {
            synced = call.then(
              () => (timed(false), OK),
              () => (timed(true), LEDGER_RETRY),
            );
            resolve(o);
          };
          call.then(resolve, reject);
        });
        if (synced === undefined) timed(false);
      } catch {
        timed(true);
        retryLater(key, kind, query, attempt + 1);
        return LEDGER_RETRY;
      }
      const answer = synced ?? OK;
      if (outcome === 'duplicate' && deps.ledger.claim) {
        // The settlement may be this process's own failed call (applied all the same: a Redis
        // reply past its timeout), which nothing has counted; or another's, which
        // did. The ledger tells, and what that call set (a question it answers without I/O where
        // no call of this process failed).
        const ct = deps.now();
        try {
          outcome = (await deps.ledger.claim(claims.bidId, source, settled)) ?? 'duplicate';
          metrics.ledger('state', (deps.now() - ct) / 1000, false);
        } catch {
          metrics.ledger('state', (deps.now() - ct) / 1000, true);
          retryLater(key, kind, query, attempt + 1);
          return LEDGER_RETRY;
        }
        if (outcome !== 'duplicate') priceUsd = settled.usd * 1000;
      }
      // The pacer and the event log take the time the ledger answered. The arrival's (the expiry's)
      // was read before the journal's sync or the Redis round trip: by now it may be of the day
      // before, after a bid of the new day rolled the pacer on.
      const at = deps.clock();
      if (markup) priceUsd = settled.usd * 1000;
      // Settled at a price this process cannot tell (a render's retry whose bid it no longer
      // remembers): counted, with no spend in the metrics, and logged unpriced; the ledger has it.
      if (Number.isNaN(priceUsd) && (outcome === 'settled' || outcome === 'overspend')) {
        priceUsd = 0;
        unpriced = true;
      }
      if (outcome === 'over-reservation') return refuse(kind, 'bad_price', new BidderError('NOTICE_BAD_PRICE', 'above the reserved amount'));
      // 410 only for a bid the ledger no longer knows, past its signed expiry: one it knows is
      // always recorded (as overspend when the budget has no room), since the exchange bills it.
      if (outcome === 'expired' || (late && outcome === 'unknown')) {
        // Settling it now could record an exchange's retry twice (the ledger has forgotten the
        // bid), yet the exchange bills it: the event log, which finance reconciles against its
        // invoice, says so in a record the impression and spend counts pass over (EventRecord's
        // 'refused'). Each retry writes one; the report counts a bid once. One with no readable
        // price has nothing to reconcile.
        if (!markup) deps.eventLog.append({ type: 'refused', ts: at, bidId: claims.bidId, campaignId: claims.campaignId, creativeId: claims.creativeId, priceCpmUsd: priceUsd, notice: kind, reason: 'expired' });
        await countLate(claims, issued, false);
        return refuse(kind, 'expired', new BidderError('NOTICE_EXPIRED'));
      }
      // A win's min-to-win is the competing bid it beat (first price: more than the win tells); one
      // above the bid cannot be, and is ignored.
      const wonMinToWin = (): number | undefined => {
        const mtw = minToWin(q, rate!, claims.cur);
        if (mtw === undefined || mtw <= (claims.bidPrice / rate!) * (1 + 1e-9)) return mtw;
        metrics.mtwIgnored(claims.exchange);
        return undefined;
      };
      // The event log keeps one record of a bid's priced billing notice, the exchange's word that
      // it billed, which reconciling the log against its billing reads. The first billing at the
      // price that stands (the usual pair: win, then billing at its price) moves no money and is
      // `confirmed`: the win (or render) counted the impression for the pacer, shader, cap and
      // spend already. The ledger keeps that it was heard (across restarts and a fleet), so a
      // repeat is a duplicate.
      if (outcome === 'confirmed') {
        metrics.notice(kind, 'ok');
        logNotice(deps.eventLog, kind, at, claims, priceUsd, wonMinToWin());
        return answer;
      }
      if (outcome === 'corrected') {
        metrics.notice(kind, 'corrected');
        if (settled.previousUsd !== undefined) metrics.corrected(claims.campaignId, settled as Required<Settled>);
        // The event log keeps the price that stands (the report reads the most authoritative one),
        // and that a rise with no room put the bid past the budget.
        logNotice(deps.eventLog, kind, at, claims, priceUsd, undefined, undefined, unpriced, settled.over === true);
        return answer;
      }
      if (outcome !== 'settled' && outcome !== 'overspend') {
        metrics.notice(kind, outcome === 'duplicate' ? 'duplicate' : 'unknown');
        return OK;
      }
      // The ledger has settled: nothing after this may fail the notice, whose retry would be a
      // duplicate and never reach the event log, pacer or cap. A recorded pCTR that is no
      // probability (a counter refuses a negative increment) is taken as unknown.
      const pctr = issued && issued.pctr >= 0 && issued.pctr <= 1 ? issued.pctr : claims.pctr;
      // The price the ledger settled, rounded to the micro-dollar as a correction's refund is:
      // the notice's own (0.0012344 for 1.2344 CPM, settled 0.001234) left spend less refunds up
      // to 0.5 µ$ an impression off the ledger's.
      const spentUsd = Number.isNaN(settled.usd) ? priceUsd / 1000 : settled.usd;
      if (outcome === 'overspend') {
        metrics.notice(kind, 'overspend');
        metrics.overspend(claims.campaignId, pctr ?? 0, spentUsd);
      } else {
        metrics.notice(kind, unpriced ? 'unpriced' : 'ok');
        metrics.win(claims.campaignId, pctr ?? 0, spentUsd);
      }
      const mtwUsd = markup ? undefined : wonMinToWin();
      // Logged first, and the other notices of the ledger's write (one for a loop turn's notices)
      // log theirs before this one's pacer, shader and cap work goes on: the report and finance
      // read the event log, and a process killed between the ledger's write and the log's line
      // leaves the impression in the ledger alone (without the yield, a kill 25 ms into 200 wins
      // left 51 of the 162 written out of the log: docs/money.md).
      logNotice(deps.eventLog, kind, at, claims, priceUsd, mtwUsd, undefined, unpriced, outcome === 'overspend');
      await Promise.resolve();
      // Whether the price is only a bound on the market's (it was at most that), not a clearing
      // price: a render's, a first-price win's (as the bid's record tells), and any at the signed
      // bid (a first price, or the bid written in: `expandPrice`). Told the markup's flag alone,
      // the pacer went by the campaign's usual auction. A bid this process does not remember (past
      // the TTL, another worker's or process's) goes by its `fp` hint (unsigned, so the version
      // before it verifies the URL; it moves no money: NoticeClaims.firstPrice): a first-price
      // exchange may bill below the bid (shaded, rounded down), which the price alone read as a
      // clearing price. A URL issued before the hint was carried goes by the price alone: more
      // than the currency's minor unit (a rounded first price) under the bid, it cleared below it.
      const atBid = priceUsd * rate! >= claims.bidPrice - priceRounding(claims.cur) - 1e-9;
      const priceIsBid = markup || (issued?.firstPrice ?? claims.firstPrice) === true || atBid;
      // Its pCTR is clicks the model that priced it expected (a bid made before a swap: the model
      // left's), as `ctrModel` knows it (docs/pacing.md).
      deps.pacer.onWin(claims.campaignId, claims.creativeId, priceUsd, at, pctr, mtwUsd, priceIsBid, ctrModel);
      // A fixed-price deal's bid (no segment) says nothing of the competition.
      if (issued === undefined) deps.peers?.tell(claims.bidId, true, mtwUsd);
      else if (issued.segment !== '') deps.shader?.observe(issued.segment, issued.bidCpmUsd, true, mtwUsd);
      // The user from this process's record of the bid, else from the signed URL: a notice that
      // reaches another process or worker than the one that bid still counts the cap. The page's
      // categories are known only where the bid was made.
      const userKey = issued?.userKey || claims.userKey;
      // Not again for a render refused as late that counted it (its win heard later still settles).
      if (userKey && !capCounted.has(claims.bidId)) await countImpression(claims, issued, userKey);
      const click = heldClicks.get(claims.bidId);
      // A win heard past its notices' expiry still learns the click (the ledger settles it while it
      // remembers the bid), up to `clickUntil`, as far as the click's dedup key holds.
      if (click !== undefined) {
        heldClicks.delete(claims.bidId);
        if (at <= click.until) await learnHeld(click, at);
      }
      return answer;
    }

    if (kind === 'loss') {
      const lt = deps.now();
      let released = false;
      try {
        released = await deps.ledger.release(claims.bidId);
        metrics.ledger('release', (deps.now() - lt) / 1000, false);
      } catch {
        // An unreleased reservation still expires on its own; the exchange need not retry.
        metrics.ledger('release', (deps.now() - lt) / 1000, true);
      }
      if (!released) {
        // A repeat, a loss after the win, or a bid this ledger no longer holds: nothing to learn.
        metrics.notice('loss', 'duplicate');
        return OK;
      }
      heldClicks.delete(claims.bidId);
      // After the release, as a win's after its settle.
      const at = deps.clock();
      const bidUsd = claims.bidPrice / rate!;
      let mtw = minToWin(q, rate!, claims.cur);
      if (mtw !== undefined && mtw > bidUsd * MTW_PLAUSIBLE_FACTOR) {
        mtw = undefined;
        metrics.mtwIgnored(claims.exchange);
      }
      const lossReason = Number(q.get('loss'));
      metrics.notice('loss', 'ok');
      // Only a loss on price says where the competition was: a bid refused as invalid, a seat
      // blocked or a creative filtered (pending approval, disapproved) was never in the auction.
      if (lostOnPrice(q.get('loss'))) {
        deps.pacer.onLoss(claims.campaignId, claims.creativeId, bidUsd, mtw, at);
        if (issued === undefined) deps.peers?.tell(claims.bidId, false, mtw);
        else if (issued.segment !== '') deps.shader?.observe(issued.segment, issued.bidCpmUsd, false, mtw);
      }
      logNotice(deps.eventLog, 'loss', at, claims, undefined, mtw, Number.isInteger(lossReason) ? lossReason : undefined);
      return OK;
    }

    // Click: record once, then send the user on to the landing page with a conversion token. A
    // click on an old ad (expired, or its creative since removed by a reload) still reaches the
    // landing page.
    const landingUrl = deps.landingUrl(claims.campaignId, claims.creativeId);
    if (landingUrl === undefined) return refuse(kind, 'malformed', new BidderError('NOTICE_MALFORMED', 'unknown creative'));
    if (deps.clock() > clickUntil(claims)) {
      // Past its expiry and the ledger's retention after it, the ledger may no longer tell whether
      // the ad ran, nor the dedup key whether the click was counted: it is not counted and mints no
      // conversion token (a token would count a conversion for a click that never counted).
      metrics.notice('click', 'expired');
      return { status: 302, body: '', headers: { location: landingUrl } };
    }
    if (prefetch) {
      metrics.notice('click', 'prefetch');
      return { status: 302, body: '', headers: { location: landingUrl, 'cache-control': 'no-store' } };
    }
    let first = false;
    let outcome: BidOutcome;
    // Each lookup is one op="state" call, answered or not: BidderLedgerErrors divides the failures
    // by all of them, and a path that counted only its failures paged at 1 in 24,000.
    let lt = deps.now();
    try {
      // A click on a bid whose loss notice released it is one on an ad that did not run (a lost
      // bid's markup is in the page with Prebid.js, say): it teaches nothing and mints no token.
      outcome = await deps.ledger.bidOutcome(claims.bidId);
      metrics.ledger('state', (deps.now() - lt) / 1000, false);
      if (outcome === 'released') {
        metrics.notice('click', 'lost');
        return { status: 302, body: '', headers: { location: landingUrl } };
      }
      // Past its expiry a bid the ledger does not know can no longer be won (its late win is refused).
      if (late && outcome === 'unknown') {
        metrics.notice('click', 'expired');
        return { status: 302, body: '', headers: { location: landingUrl } };
      }
      // Past its expiry, on a bid whose win is not heard: taken up below, with no dedup key.
      if (!late || outcome === 'settled') {
        // Deduplicated in the ledger's store (journal or Redis): across restarts and a fleet, for
        // as long as a click on the bid can count.
        lt = deps.now();
        first = await deps.ledger.once(`c:${claims.bidId}`, clickUntil(claims));
        metrics.ledger('state', (deps.now() - lt) / 1000, false);
      }
    } catch {
      // The user still reaches the landing page; the click is not counted, and so mints no
      // conversion token (a token would count a conversion for a click that never counted).
      metrics.ledger('state', (deps.now() - lt) / 1000, true);
      return { status: 302, body: '', headers: { location: landingUrl } };
    }
    if (late && outcome !== 'settled') {
      // Past its expiry, on a bid whose win is not heard: most likely one that lost on an exchange
      // that sends no loss notices, so it is not counted now, not logged, and mints no token. Its
      // win may still come, late (the ledger settles it while it remembers the bid): it waits for
      // that as a click in time does, and takes the dedup key only then (learnHeld), so that a key
      // is only ever taken by a click that was counted. A click already waiting for this win (this
      // one before, or one in time) is the same click.
      if (heldClicks.has(claims.bidId)) metrics.notice('click', 'duplicate');
      else {
        metrics.notice('click', 'expired');
        await learnIfWonMeanwhile(claims.bidId, holdClick(claims, issued?.userKey || claims.userKey, ctrModel, true), deps.clock());
      }
      return { status: 302, body: '', headers: { location: landingUrl } };
    }
    if (!first) metrics.notice('click', 'duplicate');
    else {
      // After the ledger's lookups, as a win's after its settle.
      const at = deps.clock();
      const userKey = issued?.userKey || claims.userKey;
      // Only a click on an ad that ran teaches, as only its conversion counts: the click URL is in
      // the markup of every bid, and on an exchange that sends no loss notices (Prebid) a lost bid
      // is never released, so clicks on bids never won raised the calibrated CTR and pushed bids
      // up. One on a bid whose win is not heard yet waits for it. The event log keeps it either
      // way: the report counts it on the impression if the win comes, else without one. A click
      // past its expiry on an ad that ran (a page left open) counts as one in time.
      if (outcome === 'settled') {
        metrics.notice('click', 'ok');
        learnClick(claims.campaignId, claims.creativeId, userKey, ctrModel, at);
        logNotice(deps.eventLog, 'click', at, claims);
      } else {
        metrics.notice('click', 'unsettled');
        const held = holdClick(claims, userKey, ctrModel, false);
        logNotice(deps.eventLog, 'click', at, claims);
        await learnIfWonMeanwhile(claims.bidId, held, at);
      }
    }
    // A repeat click mints a token too (its conversion is deduplicated by the bid): the dedup key
    // it found taken was taken by a click that was counted (logged), in time or, past the expiry,
    // on a bid the ledger had settled; a late click on a bid not settled takes none until it is
    // counted (learnHeld). So a duplicate never mints a token for a bid no click was counted on.
    return { status: 302, body: '', headers: { location: withQuery(landingUrl, `rtbclk=${clickToken(claims, outcome === 'settled')}`) } };
  }

  return Object.assign((kind: NoticeKind, query: string, prefetch = false) => handleNotice(kind, query, prefetch), {
    unheard,
    fromPeer,
    /** Drops the notices waiting to be tried again (the ledger is closing) and closes the peers. */
    close(): void {
      closed = true;
      if (retryTimer !== null) clearInterval(retryTimer);
      retryTimer = null;
      pending.clear();
      deps.peers?.close?.();
    },
  });
}

export type NoticeHandler = ReturnType<typeof createNoticeHandler>;

/** A conversion token's signature: the first 16 bytes of HMAC-SHA256 over its payload. */
const TOKEN_MAC_BYTES = 16;
function tokenMac(key: Buffer, payload: string): Buffer {
  return createHmac('sha256', key).update(payload).digest().subarray(0, TOKEN_MAC_BYTES);
}

/** `url` with `param` added to its query: before any `#fragment`, which the landing server never sees. */
export function withQuery(url: string, param: string): string {
  const hash = url.indexOf('#');
  const base = hash < 0 ? url : url.slice(0, hash);
  return `${base}${base.includes('?') ? '&' : '?'}${param}${hash < 0 ? '' : url.slice(hash)}`;
}
