import type { NoticeKind } from '../types.js';
import { BidderError } from '../errors/codes.js';
import { errorAnswer, type Answer } from '../errors/answer.js';
import type { EventLog } from '../eventlog/eventlog.js';
import type { Metrics } from '../metrics/metrics.js';
import type { NoticeClaims } from './sign.js';

export const OK: Answer = Object.freeze({ status: 200, body: '{"ok":true}' });
export const LEDGER_RETRY: Answer = Object.freeze(errorAnswer(new BidderError('LEDGER_UNAVAILABLE')));

/** A notice refused: counted under `result`, answered with `err`. */
export function refuse(metrics: Pick<Metrics, 'notice'>, kind: NoticeKind, result: 'forged' | 'expired' | 'bad_price' | 'malformed' | 'lost', err: BidderError): Answer {
  metrics.notice(kind, result);
  return errorAnswer(err);
}

/**
 * The event log's record of a notice, built without spreads: a field it lacks is undefined, which
 * the log leaves out as JSON does.
 */
export function logNotice(log: EventLog, type: NoticeKind, ts: number, c: NoticeClaims, priceCpmUsd?: number, minToWinCpmUsd?: number, lossReason?: number, unpriced = false, overspend = false): void {
  log.append({ type, ts, bidId: c.bidId, campaignId: c.campaignId, creativeId: c.creativeId, priceCpmUsd, lossReason, minToWinCpmUsd, unpriced: unpriced || undefined, overspend: overspend || undefined });
}
