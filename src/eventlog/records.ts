import type { ImpContext, NoticeKind, UserProfile } from '../types.js';
import type { ByteWriter } from '../json/bytes.js';

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
  ctx: ImpContext;
  /** Profile as the features saw it (undefined when user-level data was not allowed). */
  profile?: UserProfile;
}

export interface NoticeRecord {
  type: NoticeKind;
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
}

export type EventRecord = BidRecord | NoticeRecord;

/**
 * `JSON.stringify(rec) + '\n'` as UTF-8, byte for byte, written field by field into `w`: the bid
 * record is the one written on every bid, and JSON.stringify's generic walk over it and its
 * context was ~3 µs of a bid request (perf); written as bytes it allocates nothing but the text of
 * its fractional numbers. Fields in the order the bid path builds them (BidRecord, then ImpContext
 * as eligibility builds it); test/eventlog.test.ts compares with JSON.stringify on contexts
 * eligibility built, so a field added there and not here fails it. The profile, rare and of any
 * shape the store returns, goes through JSON.stringify.
 */
export function writeBidRecord(w: ByteWriter, rec: BidRecord): void {
  const c = rec.ctx;
  w.text('{"type":"bid","ts":');
  w.num(rec.ts);
  w.text(',"bidId":');
  w.str(rec.bidId);
  w.text(',"campaignId":');
  w.str(rec.campaignId);
  w.text(',"creativeId":');
  w.str(rec.creativeId);
  if (rec.creativeFingerprint !== undefined) (w.text(',"creativeFingerprint":'), w.str(rec.creativeFingerprint));
  w.text(',"priceCpmUsd":');
  w.num(rec.priceCpmUsd);
  w.text(',"pctr":');
  w.num(rec.pctr);
  if (rec.multiplier !== undefined) (w.text(',"multiplier":'), w.num(rec.multiplier));
  if (rec.auctionType !== undefined) (w.text(',"auctionType":'), w.num(rec.auctionType));
  w.text(',"modelVersion":');
  w.str(rec.modelVersion);
  w.text(',"ctx":{"requestId":');
  w.str(c.requestId);
  w.text(',"impId":');
  w.str(c.impId);
  w.text(',"exchange":');
  w.str(c.exchange);
  w.text(c.isApp ? ',"isApp":true,"siteOrAppId":' : ',"isApp":false,"siteOrAppId":');
  w.str(c.siteOrAppId);
  w.text(',"publisherId":');
  w.str(c.publisherId);
  w.text(',"domain":');
  w.str(c.domain);
  w.text(',"categories":');
  strs(w, c.categories, LOGGED_PER_LIST);
  w.text(',"deviceType":');
  w.num(c.deviceType);
  w.text(',"os":');
  w.str(c.os);
  w.text(',"country":');
  w.str(c.country);
  w.text(',"region":');
  w.str(c.region);
  w.text(',"hour":');
  w.num(c.hour);
  w.text(',"format":');
  w.str(c.format);
  w.text(',"w":');
  w.num(c.w);
  w.text(',"h":');
  w.num(c.h);
  w.text(',"dealId":');
  w.str(c.dealId);
  w.text(',"userKey":');
  w.str(c.userKey);
  w.text(',"segments":');
  strs(w, c.segments, LOGGED_PER_LIST);
  w.text(c.userDataAllowed ? ',"userDataAllowed":true}' : ',"userDataAllowed":false}');
  if (rec.profile !== undefined) (w.text(',"profile":'), w.text(JSON.stringify(rec.profile)));
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
