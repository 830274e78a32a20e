/**
 * Contracts shared between pipeline stages. Each stage module owns its implementation; this file
 * holds only the shapes that cross a stage boundary, so stages can be built and tested alone.
 */

/** Media type of an impression or a creative (OpenRTB 2.6 §3.2.4: exactly the imp's objects). */
export type MediaType = 'banner' | 'video' | 'native' | 'audio';

/** Campaign goal: what one unit of outcome is worth to the advertiser (USD). */
export interface Goal {
  type: 'cpc' | 'cpa' | 'cpm';
  /** USD per click (cpc), per conversion (cpa) or per thousand impressions (cpm). */
  valueUsd: number;
  /**
   * cpa only: the share of the campaign's clicks expected to convert, the base its creatives' pCVR
   * is calibrated from (src/price/price.ts `baseCvr`; DEFAULT_PCVR, 0.05, when absent).
   */
  cvr?: number;
}

export interface Budget {
  dailyUsd: number;
  /** Whole-flight budget; absent = unlimited beyond the daily budget. */
  lifetimeUsd?: number;
  /** Flight dates, ISO yyyy-mm-dd, inclusive, in UTC. */
  start?: string;
  end?: string;
  /**
   * How the day's budget is spent: 'max-value' (default) buys the most value the budget allows
   * over the day, 'even' follows the day's traffic curve, 'asap' bids full value until spent.
   */
  pacing?: PacingMode;
  /** max-value only: most of the day's budget spent in any one UTC hour, as a share in (0, 1]. */
  hourlyCapShare?: number;
}

export type PacingMode = 'max-value' | 'even' | 'asap';

export interface Creative {
  id: string;
  campaignId: string;
  format: MediaType;
  w?: number;
  h?: number;
  /** Video/audio: duration in seconds and MIME types. */
  durationSec?: number;
  mimes?: string[];
  /** OpenRTB creative attributes (List 5.3), checked against imp battr. */
  attr: number[];
  /**
   * The ad's language (BCP 47: `en`, `en-GB`; `xx`: no linguistic content), checked against a
   * request's `wlang` / `wlangb` and answered as `bid.language`; a creative without one (nor its
   * campaign's) gets no bid where the request names the languages it allows.
   */
  language?: string;
  /** Text the CTR model reads (hashed n-grams). */
  title: string;
  keywords: string[];
  /** Image embedding supplied with the creative in the catalog (fixed length, see FeatureSpec). */
  imageEmbedding: number[];
  landingUrl: string;
  /** Markup template; `${CLICK_URL}` is replaced by the bidder's signed click URL. */
  adm?: string;
  /**
   * What kind of banner the `adm` is (AdCOM banner ad types: 1 XHTML text, 2 XHTML banner, 3
   * JavaScript, 4 iframe), checked against `banner.btype`; undeclared, it is not checked. A banner
   * without `adm` is the bidder's own text link: type 1.
   */
  btype?: number;
  /**
   * The MIME type of the content the `adm` shows (`text/html`, `image/png`…), checked against
   * `banner.mimes`; undeclared, an `adm` is markup, `text/html`, as the bidder's own (a banner
   * without `adm`) is.
   */
  mime?: string;
  /** Native: the assets a native request may ask for besides the title (src/eligibility/native.ts). */
  native?: NativeAssets;
  /** Native: its campaign's `privacyUrl`, linked as the response's `privacy` where the request supports it. */
  privacyUrl?: string;
  /** Video/audio: the files a player picks from (VAST `<MediaFiles>`); the creative's `mimes` are theirs. */
  mediaFiles?: MediaFile[];
  /** Video: a non-linear (overlay) version of the ad, answered where `imp.video.linearity` is 2. */
  nonLinear?: NonLinearAd;
  /** Declared placements: absent = any. `true` = only such imps, `false` = never (imp.instl, imp.rwdd). */
  interstitial?: boolean;
  rewarded?: boolean;
  /** Video placements the creative is made for (OpenRTB 2.6 `plcmt`, list 7.4 of AdCOM); absent = any. */
  plcmt?: number[];
}

/** Native image asset types (Native 1.2 §7.4): icon 1, logo 2 (1.0/1.1), main 3. */
export type NativeImageType = 'icon' | 'logo' | 'main';

export interface NativeImage {
  type: NativeImageType;
  url: string;
  w: number;
  h: number;
  mime?: string;
}

/** Native data asset names (Native 1.2 §7.3, data asset types 1-12). */
export const NATIVE_DATA_TYPES = [
  'sponsored', 'desc', 'rating', 'likes', 'downloads', 'price', 'saleprice', 'phone', 'address', 'desc2', 'displayurl', 'ctatext',
] as const;
export type NativeDataName = (typeof NATIVE_DATA_TYPES)[number];

export interface NativeAssets {
  images?: NativeImage[];
  data?: Partial<Record<NativeDataName, string>>;
}

export interface MediaFile {
  url: string;
  mime: string;
  /** Pixels; 0 for audio. */
  w?: number;
  h?: number;
  bitrateKbps?: number;
  delivery?: 'progressive' | 'streaming';
}

export interface NonLinearAd {
  /** A static image (VAST `<StaticResource>`). */
  url: string;
  mime: string;
  w: number;
  h: number;
}

export interface DealTarget {
  id: string;
}

export interface Targeting {
  siteIds?: string[];
  appBundles?: string[];
  domains?: string[];
  /** IAB content categories (prefix match: `IAB17` covers `IAB17-1`). */
  categories?: string[];
  countries?: string[];
  regions?: string[];
  /** OpenRTB device types (List 5.21). */
  deviceTypes?: number[];
  /** Lower-cased OS names. */
  os?: string[];
  /** Dayparting: the hours 0..23 it bids in, read in `timeZone`. */
  hours?: number[];
  /**
   * Where `hours` are read: `UTC` (the default), an IANA zone (`America/New_York`, daylight saving
   * included), or `user`: the user's local time from `device.geo.utcoffset` (UTC where absent).
   */
  timeZone?: string;
  /** User segment ids (user.data[].segment[].id); needs user-level data, so not under COPPA/no consent. */
  segments?: string[];
  /** Deals the campaign buys; with `dealsOnly` it bids only through them. */
  deals?: DealTarget[];
  dealsOnly?: boolean;
}

export interface Campaign {
  id: string;
  advertiser: string;
  adomain: string[];
  /** IAB Content Category Taxonomy 1.0 codes of the ads (OpenRTB `cattax` 1, the default), checked against bcat and acat. */
  cat: string[];
  /**
   * The ads' categories in other taxonomies, by their AdCOM `cattax` number (e.g. 7, IAB Content
   * Taxonomy 3.0), matched exactly: list the category and its ancestors, since a publisher blocks
   * at any level. A request that blocks (`bcat`) or allows (`acat`) categories in a taxonomy the
   * campaign does not declare gets no bid from it: it cannot be shown to comply.
   */
  catByTaxonomy?: Record<string, string[]>;
  /** The default `language` of its creatives (BCP 47). */
  language?: string;
  /**
   * EU Digital Services Act transparency (IAB Tech Lab's DSA extension, `bid.ext.dsa`): on whose
   * behalf the ad is shown and who paid for it. A request that requires it (`regs.ext.dsa.dsarequired`
   * 2 or 3) gets no bid from a campaign without it.
   */
  dsa?: { behalf: string; paid: string };
  /**
   * An https page telling the user about the buyer's targeting (Native 1.2 response `privacy`),
   * linked from its native ads where the request says it supports one (`privacy: 1`).
   */
  privacyUrl?: string;
  goal: Goal;
  budget: Budget;
  /** Hard cap on any bid, CPM USD. */
  maxBidCpmUsd: number;
  targeting: Targeting;
  /** What to do when the request forbids user-level data (COPPA, GDPR without consent). */
  onNoConsent: 'contextual' | 'nobid';
  /** Frequency cap: at most `count` impressions per user per `windowSec`. */
  frequencyCap?: { count: number; windowSec: number };
  paused?: boolean;
  creatives: Creative[];
}

/**
 * What the features stage reads about one impression, built once per imp from the request.
 * User-level fields are empty when privacy forbids their use.
 */
export interface ImpContext {
  requestId: string;
  impId: string;
  exchange: string;
  isApp: boolean;
  siteOrAppId: string;
  publisherId: string;
  domain: string;
  /** Content categories of the site/app (IAB). */
  categories: readonly string[];
  deviceType: number;
  os: string;
  country: string;
  region: string;
  /** Hour of day (UTC, 0..23) at which the request is handled. */
  hour: number;
  format: MediaType;
  w: number;
  h: number;
  dealId: string;
  /** Pseudonymous user key ('' when none or when user-level data may not be used). */
  userKey: string;
  segments: string[];
  userDataAllowed: boolean;
  /**
   * true where user data is used for the bid but may not be kept past it (GDPR without a basis for
   * TCF purpose 10, src/eligibility/privacy.ts): its bid record keeps the context only. Else
   * undefined, so JSON leaves it out.
   */
  userDataWithheld?: true;
}

/** User behaviour kept per user key (lru-cache locally, Redis in a fleet). */
export interface UserProfile {
  /** Recently seen and clicked categories, newest last, bounded. */
  seenCategories: string[];
  clickedCategories: string[];
  /** Impressions per campaign id in the current frequency window. */
  campaignImpressions: Record<string, number>;
}

/**
 * A CTR model ready to score. `predict` is synchronous over a whole batch: row r's sparse ids are
 * `sparse[r*spec.sparseFields .. ]`, dense values `dense[r*spec.denseDim ..]`.
 */
export interface CtrModel {
  readonly version: string;
  readonly kind: string;
  readonly specHash: string;
  readonly backend: string;
  predict(sparse: Int32Array, dense: Float32Array, rows: number): Float32Array;
  /**
   * Present where the scores live on a GPU (the webgpu backend): reading them back synchronously
   * would stall the loop for the whole device round trip, and Node's WebGPU cannot do it at all.
   * The batcher then awaits this instead of calling predict. It reads the caller's arrays before
   * it returns, so they may be reused at once.
   */
  predictAsync?(sparse: Int32Array, dense: Float32Array, rows: number): Promise<Float32Array>;
  dispose(): void;
}

export type BidOutcome = 'held' | 'settled' | 'released' | 'expired' | 'unknown';

/** Result of a ledger reservation for one bid. */
export interface Reservation {
  bidId: string;
  campaignId: string;
  /** Worst-case cost of the bid, USD (CPM / 1000). */
  amountUsd: number;
  /** Epoch ms after which an unsettled reservation is released. */
  expiresAtMs: number;
}

/**
 * `overspend`: a win the budget no longer had room for (late, or after a loss notice), recorded
 * apart from the budgeted spend because the exchange bills it anyway. `corrected`: a billing notice
 * lowered an already settled price (once). `confirmed`: a billing notice at the price that stands,
 * the first heard (the usual win and billing pair): nothing moved, the event log records it, and
 * the ledger keeps that it was heard (a repeat is a `duplicate`). `expired`: only from journals of
 * older versions.
 */
/** What a settle call that moved money left standing (`BudgetLedger.settle`'s `settled`). */
export interface Settled {
  /** The price that now stands, USD (a markup report's is the reserved amount, which its caller cannot know). */
  usd: number;
  /**
   * On a correction: the price it replaced (USD), whether the bid was past the budget before, and
   * whether it is now (a rise with no room moves the whole bid there).
   */
  previousUsd?: number;
  wasOver?: boolean;
  over?: boolean;
  /**
   * Set by the caller: called, with the outcome and the fields above filled, as soon as a
   * settlement that moved money (settled, overspend, corrected, confirmed) is written where the
   * call then waits for it to be durable (the journal ledger's fdatasync). A process killed during
   * that wait leaves the record, which replay applies, and the exchange's retry is then a
   * duplicate: what the caller counts for a settlement it counts when told. The call still
   * resolves, or rejects with `UnconfirmedSettlement`, once the sync is done.
   */
  written?: (outcome: SettleOutcome) => void;
}

export type SettleOutcome = 'settled' | 'duplicate' | 'unknown' | 'over-reservation' | 'expired' | 'overspend' | 'corrected' | 'confirmed';

/** A campaign whose commitments on the current day pass its budget (after the budget was lowered). */
export interface OverCommitted {
  campaignId: string;
  /** Spend, overspend and open reservations of the day. */
  committedUsd: number;
  budgetUsd: number;
  reservedUsd: number;
}

/**
 * Budget ledger: the hard guarantee that spend never exceeds a budget. Implemented in process
 * (with a journal) and on Redis; one shared test suite. All money in USD.
 */
export interface Ledger {
  /** Reserve each bid's worst case atomically per item; true where reserved. One round trip for all. */
  reserve(items: Reservation[]): Promise<boolean[]>;
  /**
   * Settle a won bid at its clearing price; idempotent by bid id. Always records a bid it knows,
   * past the budget as overspend. `source` (default `win`): who reports it. A more authoritative
   * report sets a settled price again, up or down, once per level (`SettleSource`).
   * `unreservedCampaignId`: a bid this ledger never reserved (another process issued it, or its
   * reservation was lost) is recorded too, for that campaign on today's budget, as spend while it
   * has room and as overspend past it: the caller passes it only for a notice signed for that
   * campaign and within its expiry, which the ledger outlives, so it was never settled here.
   * `settled`: filled after a call that moved money (settled, overspend, corrected).
   * `signedExpiryMs`: the notice's signed expiry (epoch ms). A bid settled is remembered for the
   * retention after the later of its settlement, its reservation's expiry and this, whatever TTL
   * the ledger runs with now: without it a bid whose reservation ended before its notices' expiry
   * (an exchange's shorter hold, a TTL lowered since the bid) could be forgotten while a notice of
   * it is still taken for one never reserved, and recorded again.
   * Rejects when the call cannot be taken as done (the caller answers "retry"); with
   * `UnconfirmedSettlement` (src/ledger) when it was applied and stands but is not known durable
   * (a journal sync failed): its `outcome` is counted now (where `settled.written` has not told it
   * already), `settled` filled, and the retry is a duplicate.
   */
  settle(bidId: string, priceUsd: number, source?: SettleSource, unreservedCampaignId?: string, settled?: Settled, signedExpiryMs?: number): Promise<SettleOutcome>;
  /**
   * After a `settle` call of this process on `bidId` from `source` failed (and its retries, which
   * go under the same call's name): what it did if it was applied all the
   * same (a Redis reply lost past its timeout), its price details into
   * `settled`; undefined when it was not, when another call settled the bid, or when it was claimed
   * already (it answers once). Without I/O where no call of this process on that report failed.
   */
  claim?(bidId: string, source: SettleSource, settled: Settled): Promise<SettleOutcome | undefined>;
  /** Release a reservation (loss notice); idempotent: true only for the call that released a held reservation. */
  release(bidId: string): Promise<boolean>;
  /**
   * True the first time `key` is seen before `untilMs` (epoch ms), false after: click and
   * conversion dedup that survives restarts (journal) and spans a fleet (Redis). Kept until `untilMs`.
   */
  once(key: string, untilMs: number): Promise<boolean>;
  /**
   * What became of a bid: its reservation still held, settled (a price stands), released (a loss
   * notice, and no price since), expired (nothing heard in time), or unknown (never reserved here,
   * or forgotten after the retention). A click on a released bid is one on an ad that did not run.
   */
  bidOutcome(bidId: string): Promise<BidOutcome>;
  /**
   * Settled spend (within budget), overspend and outstanding reservations for a campaign, today;
   * and its spend and overspend on all the days before today (what a lifetime budget has paid out
   * before today: a pacer spreads the rest of a flight from it, which the budget of today cannot
   * tell, it being a fleet's strictest rule and the daily one wherever the lifetime does not cut it).
   */
  state(campaignId: string): Promise<{ spentUsd: number; reservedUsd: number; budgetUsd: number; overspentUsd: number; spentBeforeUsd: number; overspentBeforeUsd: number }>;
  /**
   * `state` of each of `campaignIds`, in the order asked, read in a few calls rather than one per
   * campaign (the fleet sync and the budget gauges read every campaign; the Redis ledger sends a
   * few hundred campaigns a call, one call after another, so the bid path's commands pass between
   * them). Rejects as a whole when any call fails.
   */
  states(campaignIds: readonly string[]): Promise<Array<Awaited<ReturnType<Ledger['state']>>>>;
  close(): Promise<void>;
}

/**
 * A ledger whose budgets can be (re)configured, e.g. on a policy reload. Spend already settled is
 * kept; a lowered budget only stops new reservations.
 */
export interface BudgetLedger extends Ledger {
  /**
   * How long a bid is remembered once it finished (a settled one: after its notices' signed expiry
   * where that is later; a held one finishes at its reservation's expiry): `bidOutcome` tells what
   * became of it until then, and a late win is settled while it is remembered.
   */
  readonly retentionMs: number;
  /**
   * Replace the budget of every listed campaign; campaigns not listed keep theirs, so their bids
   * still out settle (the Redis ledger stops renewing this process's rule for them, and the rule in
   * force stays until another process registers one). Rejects (nothing changed) on an invalid
   * budget. Answers the listed campaigns whose spend and open reservations
   * of today now pass the budget: bids already out that may still be billed.
   */
  configure(budgets: Readonly<Record<string, Budget>>): Promise<OverCommitted[]>;
}

/**
 * Who reports a win, from least to most authoritative: `markup`, a render seen through a tracker
 * in the ad's markup (public, so it carries no price: settled at the reserved amount, the most the
 * exchange can bill); `win`, the exchange's win notice (its clearing price); `billing`, the
 * exchange's billing notice (what it bills).
 */
export type SettleSource = 'markup' | 'win' | 'billing';

/**
 * Notice kinds the bidder serves (OpenRTB 2.6 §4.3 nurl/burl/lurl, plus click and conversion, and
 * the impression tracker of native and VAST markup).
 */
export type NoticeKind = 'win' | 'billing' | 'loss' | 'click' | 'conversion' | 'impression' | PlayerEvent;

/** What a video or audio player reports through the VAST tracking and error URLs. */
export type PlayerEvent = 'start' | 'complete' | 'error';

/**
 * Pacing per campaign (Thompson sampling). Called on the hot path, so synchronous: it decides from
 * in-memory posteriors; feedback arrives through the on* calls from notices.
 */
/** One chance to bid, as the pacer learns the day's opportunities from it. */
export interface Opportunity {
  /** Expected value of the impression to the campaign, CPM USD (pCTR x value per click, ...). */
  valueCpmUsd: number;
  /** OpenRTB `at` = 1. */
  firstPrice: boolean;
}

export interface Pacer {
  /**
   * Bid multiplier (1 / λ) for the campaign at `nowMs`; 0 means do not bid now. Each call is one
   * opportunity: one per campaign and imp, whatever number of its creatives are candidates (only
   * one of its bids can go out); `opp` tells the value pacer what it was worth (its best
   * creative's value) and how it is auctioned.
   */
  multiplier(campaignId: string, nowMs: number, opp?: Opportunity): number;
  /**
   * pCTR to price with for a creative: the model's, calibrated by the clicks observed (posterior
   * mean). `learn` false (a test request) reads the calibration without folding this pCTR into the
   * creative's mean.
   */
  calibratePctr(creativeId: string, modelPctr: number, learn?: boolean): number;
  /** The same for the conversion rate after a click (CPA goals). */
  calibratePcvr(creativeId: string, modelPcvr: number): number;
  onBid(campaignId: string, creativeId: string, bidCpmUsd: number, nowMs: number): void;
  /**
   * A win, with the model's pCTR the bid was priced on when the notice can tell (it calibrates the
   * creative), and the exchange's min-to-win when it sent one (the competing bid beaten).
   * `priceIsBid`: the price is only a bound on the auction's price, which was at most that (a
   * first-price win's, which pays the bid; a render reported by the markup's tracker); false: a
   * second-price clearing price; absent: not known (the value pacer goes by the campaign's usual
   * auction, most of its opportunities').
   */
  onWin(campaignId: string, creativeId: string, priceCpmUsd: number, nowMs: number, modelPctr?: number, minToWinCpmUsd?: number, priceIsBid?: boolean): void;
  onLoss(campaignId: string, creativeId: string, bidCpmUsd: number, minToWinCpmUsd: number | undefined, nowMs: number): void;
  onClick(campaignId: string, creativeId: string, nowMs: number): void;
  /** A conversion, with the time of its click when the notice tells it (it teaches the conversion delay). */
  onConversion(campaignId: string, creativeId: string, nowMs: number, clickMs?: number): void;
}

/** First-price bid shading: the bid that maximises expected surplus for a value, never below the floor. */
export interface Shader {
  shade(segment: string, valueCpmUsd: number, floorCpmUsd: number): number;
  observe(segment: string, bidCpmUsd: number, won: boolean, minToWinCpmUsd?: number): void;
}
