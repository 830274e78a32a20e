import type { ImpContext, NoticeKind, UserProfile } from '../types.js';
import { utf8, type ByteWriter } from '../json/bytes.js';

/**
 * Event-log records (NDJSON, one per line). Pseudonymous: `ctx.userKey` is a keyed hash of the
 * user id, never the id itself; no IP or device id is ever written. Training joins `bid` records
 * with later notices by `bidId`; `bid` carries the context and profile the features stage read,
 * and names the creative with a fingerprint of what the catalog gave the features for it: the
 * creative's half of the row is rebuilt from the catalog at training time, which leaves out the
 * rows of a creative whose fingerprint has changed since (src/model/eventlog-data.ts).
 */
export interface BidRecord {
  type: 'bid';
  ts: number;
  bidId: string;
  campaignId: string;
  creativeId: string;
  /** PreparedCreative.fingerprint of the creative the row was built from; absent in older logs. */
  creativeFingerprint?: string;
  /** Bid CPM in USD. */
  priceCpmUsd: number;
  pctr: number;
  /** The pacing multiplier the bid was priced with (λ = 1 / multiplier); absent in older logs. */
  multiplier?: number;
  /** The request's auction type (1 first price, 2 second price); absent in older logs. */
  auctionType?: number;
  modelVersion: string;
  /** As the features saw it, but with no userKey or segments where `ctx.userDataWithheld` (writeBidRecord). */
  ctx: ImpContext;
  /** Profile as the features saw it (undefined when user-level data was not allowed, or is withheld). */
  profile?: UserProfile;
}

/**
 * A notice record, or a refused one (`type: 'refused'`): a priced win or billing notice, signed,
 * answered 410 NOTICE_EXPIRED because it came past its signed expiry and the ledger no longer knows
 * its bid (its retention, 2 x noticeTtlMs past the expiry, has passed), so nothing was recorded,
 * while the exchange bills it. Its own type, not the notice's with a flag: a reader that knows only
 * the notice types (the report before it, training) passes over it, where a `win` of any shape is
 * an impression and spend to them. `bidder report` counts it apart (`refusedLate`), once per bid.
 */
export interface NoticeRecord {
  type: NoticeKind | 'refused';
  ts: number;
  bidId: string;
  campaignId: string;
  creativeId: string;
  /** Clearing price CPM in USD for win/billing; loss reason code for loss. */
  priceCpmUsd?: number;
  lossReason?: number;
  /** The exchange's ${AUCTION_MIN_TO_WIN}, CPM USD, when it sent one: the market price of that auction (on a win, the competing bid it beat). */
  minToWinCpmUsd?: number;
  /**
   * A win or billing notice whose price could not be read (a macro left unexpanded): settled at the
   * reserved amount with a render's authority, so a priced notice later corrects it (docs/money.md).
   */
  unpriced?: true;
  /** Billed past the budget (a late win with no room left): the ledger counts it apart, as overspend. */
  overspend?: true;
  /** On a refused record: the notice refused, and why (the one reason logged). */
  notice?: 'win' | 'billing';
  reason?: 'expired';
}

export type EventRecord = BidRecord | NoticeRecord;

/** The bid record's literal parts of 8 bytes or more, encoded once: one native copy each (ByteWriter.bytes). */
const R_TYPE_BID_TS = utf8('{"type":"bid","ts":');
const R_BIDID = utf8(',"bidId":');
const R_CAMPAIGNID = utf8(',"campaignId":');
const R_CREATIVEID = utf8(',"creativeId":');
const R_CREATIVEFINGERPRINT = utf8(',"creativeFingerprint":');
const R_PRICECPMUSD = utf8(',"priceCpmUsd":');
const R_PCTR = utf8(',"pctr":');
const R_MULTIPLIER = utf8(',"multiplier":');
const R_AUCTIONTYPE = utf8(',"auctionType":');
const R_MODELVERSION = utf8(',"modelVersion":');
const R_CTX_REQUESTID = utf8(',"ctx":{"requestId":');
const R_IMPID = utf8(',"impId":');
const R_EXCHANGE = utf8(',"exchange":');
const R_PUBLISHERID = utf8(',"publisherId":');
const R_DOMAIN = utf8(',"domain":');
const R_CATEGORIES = utf8(',"categories":');
const R_DEVICETYPE = utf8(',"deviceType":');
const R_COUNTRY = utf8(',"country":');
const R_REGION = utf8(',"region":');
const R_HOUR = utf8(',"hour":');
const R_FORMAT = utf8(',"format":');
const R_DEALID = utf8(',"dealId":');
const R_USERKEY = utf8(',"userKey":');
const R_SEGMENTS = utf8(',"segments":');
const R_PROFILE = utf8(',"profile":');
const R_ISAPP_TRUE_SITEORAPPID = utf8(',"isApp":true,"siteOrAppId":');
const R_ISAPP_FALSE_SITEORAPPID = utf8(',"isApp":false,"siteOrAppId":');
const R_USERDATAALLOWED_TRUE = utf8(',"userDataAllowed":true}');
const R_USERDATAALLOWED_FALSE = utf8(',"userDataAllowed":false}');
const R_USERDATAWITHHELD = utf8(',"userDataAllowed":true,"userDataWithheld":true}');
const NO_SEGMENTS: readonly string[] = [];

/**
 * `JSON.stringify(rec) + '\n'` as UTF-8, byte for byte, written field by field into `w`: the bid
 * record is the one written on every bid, and JSON.stringify's generic walk over it and its
 * context was ~3 µs of a bid request (perf); written as bytes it allocates nothing but the text of
 * its fractional numbers. Fields in the order the bid path builds them (BidRecord, then ImpContext
 * as eligibility builds it); test/eventlog.test.ts compares with JSON.stringify on contexts
 * eligibility built, so a field added there and not here fails it. The profile, rare and of any
 * shape the store returns, goes through JSON.stringify.
 *
 * Where `ctx.userDataWithheld`, the user's data was used for the bid but may not be kept for
 * training (GDPR without a basis for TCF purpose 10, docs/privacy.md): the record is written
 * with the user key empty, no segments and no profile, as a contextual bid's, and the flag kept,
 * so spend, the report and the contextual half of the training row stay.
 */
export function writeBidRecord(w: ByteWriter, rec: BidRecord): void {
  const c = rec.ctx;
  w.bytes(R_TYPE_BID_TS);
  w.num(rec.ts);
  w.bytes(R_BIDID);
  w.str(rec.bidId);
  w.bytes(R_CAMPAIGNID);
  w.str(rec.campaignId);
  w.bytes(R_CREATIVEID);
  w.str(rec.creativeId);
  if (rec.creativeFingerprint !== undefined) (w.bytes(R_CREATIVEFINGERPRINT), w.str(rec.creativeFingerprint));
  w.bytes(R_PRICECPMUSD);
  w.num(rec.priceCpmUsd);
  w.bytes(R_PCTR);
  w.num(rec.pctr);
  if (rec.multiplier !== undefined) (w.bytes(R_MULTIPLIER), w.num(rec.multiplier));
  if (rec.auctionType !== undefined) (w.bytes(R_AUCTIONTYPE), w.num(rec.auctionType));
  w.bytes(R_MODELVERSION);
  w.str(rec.modelVersion);
  w.bytes(R_CTX_REQUESTID);
  w.str(c.requestId);
  w.bytes(R_IMPID);
  w.str(c.impId);
  w.bytes(R_EXCHANGE);
  w.str(c.exchange);
  w.bytes(c.isApp ? R_ISAPP_TRUE_SITEORAPPID : R_ISAPP_FALSE_SITEORAPPID);
  w.str(c.siteOrAppId);
  w.bytes(R_PUBLISHERID);
  w.str(c.publisherId);
  w.bytes(R_DOMAIN);
  w.str(c.domain);
  w.bytes(R_CATEGORIES);
  strs(w, c.categories, LOGGED_PER_LIST);
  w.bytes(R_DEVICETYPE);
  w.num(c.deviceType);
  w.text(',"os":');
  w.str(c.os);
  w.bytes(R_COUNTRY);
  w.str(c.country);
  w.bytes(R_REGION);
  w.str(c.region);
  w.bytes(R_HOUR);
  w.num(c.hour);
  w.bytes(R_FORMAT);
  w.str(c.format);
  w.text(',"w":');
  w.num(c.w);
  w.text(',"h":');
  w.num(c.h);
  w.bytes(R_DEALID);
  w.str(c.dealId);
  const withheld = c.userDataWithheld === true;
  w.bytes(R_USERKEY);
  w.str(withheld ? '' : c.userKey);
  w.bytes(R_SEGMENTS);
  strs(w, withheld ? NO_SEGMENTS : c.segments, LOGGED_PER_LIST);
  w.bytes(withheld ? R_USERDATAWITHHELD : c.userDataAllowed ? R_USERDATAALLOWED_TRUE : R_USERDATAALLOWED_FALSE);
  if (rec.profile !== undefined && !withheld) (w.bytes(R_PROFILE), w.text(JSON.stringify(rec.profile)));
  w.text('}\n');
}

/**
 * The page categories and user segments a bid record keeps, the first of each: more than the
 * model reads (the first category, the first 4 segments: src/features/features.ts), so a model
 * trained from the log sees what the bidder saw. Every bid of a request repeated all of them: one
 * request of 181 KB wrote 1.41 MB of log over its 10 bids (input audit).
 */
const LOGGED_PER_LIST = 16;

function strs(w: ByteWriter, a: readonly string[], max: number): void {
  w.text('[');
  const n = Math.min(a.length, max);
  for (let i = 0; i < n; i++) {
    if (i > 0) w.text(',');
    w.str(a[i]);
  }
  w.text(']');
}

const N_TYPE = utf8('{"type":');
const N_LOSSREASON = utf8(',"lossReason":');
const N_MINTOWINCPMUSD = utf8(',"minToWinCpmUsd":');
const N_UNPRICED = utf8(',"unpriced":true');
const N_OVERSPEND = utf8(',"overspend":true');
const N_NOTICE = utf8(',"notice":');
const N_REASON = utf8(',"reason":');

/**
 * `JSON.stringify(rec) + '\n'` as UTF-8 for a notice record whose keys are in NoticeRecord's order
 * (type, ts, bidId, campaignId, creativeId, priceCpmUsd, lossReason, minToWinCpmUsd, unpriced,
 * overspend, notice, reason; an undefined one left out, as JSON leaves it), written field by field
 * into `w`: the generic walk of a win notice's record was ~8k of its instructions (callgrind), this
 * ~3k.
 */
export function writeNoticeRecord(w: ByteWriter, rec: NoticeRecord): void {
  w.bytes(N_TYPE);
  w.str(rec.type);
  w.text(',"ts":');
  w.num(rec.ts);
  w.bytes(R_BIDID);
  w.str(rec.bidId);
  w.bytes(R_CAMPAIGNID);
  w.str(rec.campaignId);
  w.bytes(R_CREATIVEID);
  w.str(rec.creativeId);
  if (rec.priceCpmUsd !== undefined) (w.bytes(R_PRICECPMUSD), w.num(rec.priceCpmUsd));
  if (rec.lossReason !== undefined) (w.bytes(N_LOSSREASON), w.num(rec.lossReason));
  if (rec.minToWinCpmUsd !== undefined) (w.bytes(N_MINTOWINCPMUSD), w.num(rec.minToWinCpmUsd));
  if (rec.unpriced !== undefined) w.bytes(N_UNPRICED);
  if (rec.overspend !== undefined) w.bytes(N_OVERSPEND);
  if (rec.notice !== undefined) (w.bytes(N_NOTICE), w.str(rec.notice));
  if (rec.reason !== undefined) (w.bytes(N_REASON), w.str(rec.reason));
  w.text('}\n');
}
