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

/**
 * A string as JSON.stringify writes it: as is between quotes when nothing in it needs an escape
 * (quote, backslash, control characters, surrogates, which JSON.stringify escapes when lone), else
 * through JSON.stringify. Scanning a short id is cheaper than JSON.stringify's copy of it.
 */
function str(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return '"' + s + '"';
}

function num(n: number): string {
  return Number.isFinite(n) ? '' + n : 'null';
}

function strs(a: readonly string[]): string {
  if (a.length === 0) return '[]';
  let out = '[' + str(a[0]);
  for (let i = 1; i < a.length; i++) out += ',' + str(a[i]);
  return out + ']';
}

/**
 * `JSON.stringify(rec) + '\n'`, byte for byte, written field by field: the bid record is the one
 * written on every bid, and JSON.stringify's generic walk over it and its context was ~3 µs of a
 * bid request (perf). Fields in the order the bid path builds them (BidRecord, then ImpContext as
 * eligibility builds it); test/eventlog.test.ts compares with JSON.stringify on contexts eligibility
 * built, so a field added there and not here fails it. The profile, rare and of any shape the
 * store returns, goes through JSON.stringify.
 */
export function bidLine(rec: BidRecord): string {
  const c = rec.ctx;
  let line =
    `{"type":"bid","ts":${num(rec.ts)},"bidId":${str(rec.bidId)},"campaignId":${str(rec.campaignId)},"creativeId":${str(rec.creativeId)}` +
    `,"priceCpmUsd":${num(rec.priceCpmUsd)},"pctr":${num(rec.pctr)}`;
  if (rec.multiplier !== undefined) line += `,"multiplier":${num(rec.multiplier)}`;
  if (rec.auctionType !== undefined) line += `,"auctionType":${num(rec.auctionType)}`;
  line +=
    `,"modelVersion":${str(rec.modelVersion)},"ctx":{"requestId":${str(c.requestId)},"impId":${str(c.impId)},"exchange":${str(c.exchange)}` +
    `,"isApp":${c.isApp},"siteOrAppId":${str(c.siteOrAppId)},"publisherId":${str(c.publisherId)},"domain":${str(c.domain)}` +
    `,"categories":${strs(c.categories)},"deviceType":${num(c.deviceType)},"os":${str(c.os)},"country":${str(c.country)},"region":${str(c.region)}` +
    `,"hour":${num(c.hour)},"format":${str(c.format)},"w":${num(c.w)},"h":${num(c.h)},"dealId":${str(c.dealId)},"userKey":${str(c.userKey)}` +
    `,"segments":${strs(c.segments)},"userDataAllowed":${c.userDataAllowed}}`;
  if (rec.profile !== undefined) line += `,"profile":${JSON.stringify(rec.profile)}`;
  return line + '}\n';
}
