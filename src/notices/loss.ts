import type { Answer } from '../errors/answer.js';
import { OK, logNotice } from './answers.js';
import type { NoticeDeps } from './deps.js';
import type { createClickLearning } from './held-clicks.js';
import type { IssuedBid } from './issued.js';
import { MTW_PLAUSIBLE_FACTOR, lostOnPrice, minToWin } from './prices.js';
import type { NoticeClaims } from './sign.js';
import type { QueryParams } from './query.js';

/**
 * Loss notices, their signature verified: the bid's reservation released; a loss that released
 * one (not a repeat, nor one after the win) forgets its held click and, when lost on price,
 * teaches the pacer and the shader where the competition was.
 */
export function createLossNotices(deps: Pick<NoticeDeps, 'ledger' | 'metrics' | 'pacer' | 'shader' | 'peers' | 'eventLog' | 'clock' | 'now'>, clicks: Pick<ReturnType<typeof createClickLearning>, 'drop'>) {
  const { metrics } = deps;
  return async function loss(q: QueryParams, claims: NoticeClaims, issued: IssuedBid | undefined, rate: number): Promise<Answer> {
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
    clicks.drop(claims.bidId);
    // After the release, as a win's after its settle.
    const at = deps.clock();
    const bidUsd = claims.bidPrice / rate;
    let mtw = minToWin(q, rate, claims.cur);
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
  };
}
