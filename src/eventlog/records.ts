import type { ImpContext, NoticeKind, UserProfile } from '../types.js';

/**
 * Event-log records (NDJSON, one per line). Pseudonymous: `ctx.userKey` is a keyed hash of the
 * user id, never the id itself; no IP or device id is ever written. Training joins `bid` records
 * with later notices by `bidId`; `bid` carries everything the features stage read, so the same
 * features can be rebuilt offline.
 */
export interface BidRecord {
  type: 'bid';
  ts: number;
  bidId: string;
  campaignId: string;
  creativeId: string;
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
}

export type EventRecord = BidRecord | NoticeRecord;
