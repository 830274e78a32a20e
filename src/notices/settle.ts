import type { Settled, SettleOutcome } from '../types.js';
import { BidderError } from '../errors/codes.js';
import type { Answer } from '../errors/answer.js';
import { LEDGER_RETRY, OK, logNotice, refuse } from './answers.js';
import type { createCapCounting } from './caps.js';
import type { NoticeDeps } from './deps.js';
import type { createClickLearning } from './held-clicks.js';
import type { IssuedRecord } from './issued.js';
import { minToWin, noticePrice } from './prices.js';
import type { QueryParams } from './query.js';
import type { createRetryQueue } from './retry.js';
import type { NoticeClaims } from './sign.js';
import type { createWinFeedback } from './win-feedback.js';

interface SettlementParts {
  caps: Pick<ReturnType<typeof createCapCounting>, 'countLate' | 'counted' | 'countImpression'>;
  clicks: Pick<ReturnType<typeof createClickLearning>, 'take' | 'learnHeld'>;
  retries: Pick<ReturnType<typeof createRetryQueue>, 'later' | 'forget'>;
  learnWin: ReturnType<typeof createWinFeedback>;
}

/**
 * Win, billing and impression (render) notices, their signature verified: the ledger settles the
 * bid at the most authoritative price heard (a failed settlement is answered "retry" and tried
 * again), the answer and the metrics say what it made of it, the event log records it, and a
 * settled impression is learnt (`learnWin`). `query` and `attempt` are for the retry.
 */
export function createSettlement(deps: Pick<NoticeDeps, 'ledger' | 'metrics' | 'eventLog' | 'clock' | 'now'>, parts: SettlementParts) {
  const { metrics } = deps;
  const { caps, clicks, retries, learnWin } = parts;
  return async function settle(kind: 'win' | 'billing' | 'impression', q: QueryParams, query: string, claims: NoticeClaims, issued: IssuedRecord | undefined, ctrModel: string | undefined, rate: number | undefined, late: boolean, attempt: number): Promise<Answer> {
    // The impression tracker reports no price: the ledger settles it at the reserved amount, the
    // bid, and tells what that was (this process may not have issued the bid).
    const render = kind === 'impression';
    // Past its expiry a render is not heard (the exchange's own late notices are), but for its user's caps.
    if (render && late) {
      await caps.countLate(claims, issued, true);
      return refuse(metrics, kind, 'expired', new BidderError('NOTICE_EXPIRED'));
    }
    const settled: Settled = { usd: NaN };
    let priceUsd = NaN;
    // A signed exchange notice whose price cannot be read (a macro the exchange left unexpanded,
    // a form no parser should guess at) still says the impression was billed: it settles like a
    // render, at the reserved amount and with the least authority, so a priced notice corrects it.
    let unpriced = false;
    if (!render) {
      const price = noticePrice(q, claims, metrics);
      if (Number.isNaN(price)) unpriced = true;
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
    if (attempt === 0) retries.forget(key);
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
      retries.later(key, kind, query, attempt + 1);
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
        retries.later(key, kind, query, attempt + 1);
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
    if (outcome === 'over-reservation') return refuse(metrics, kind, 'bad_price', new BidderError('NOTICE_BAD_PRICE', 'above the reserved amount'));
    // 410 only for a bid the ledger no longer knows, past its signed expiry: one it knows is
    // always recorded (as overspend when the budget has no room), since the exchange bills it.
    if (outcome === 'expired' || (late && outcome === 'unknown')) {
      // Settling it now could record an exchange's retry twice (the ledger has forgotten the
      // bid), yet the exchange bills it: the event log, which finance reconciles against its
      // invoice, says so in a record the impression and spend counts pass over (EventRecord's
      // 'refused'). Each retry writes one; the report counts a bid once. One with no readable
      // price has nothing to reconcile.
      if (!markup) deps.eventLog.append({ type: 'refused', ts: at, bidId: claims.bidId, campaignId: claims.campaignId, creativeId: claims.creativeId, priceCpmUsd: priceUsd, notice: kind, reason: 'expired' });
      await caps.countLate(claims, issued, false);
      return refuse(metrics, kind, 'expired', new BidderError('NOTICE_EXPIRED'));
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
    learnWin(claims, issued, ctrModel, priceUsd, rate!, at, pctr, mtwUsd, markup);
    // The user from this process's record of the bid, else from the signed URL: a notice that
    // reaches another process or worker than the one that bid still counts the cap. The page's
    // categories are known only where the bid was made.
    const userKey = issued?.userKey || claims.userKey;
    // Not again for a render refused as late that counted it (its win heard later still settles).
    if (userKey && !caps.counted(claims.bidId)) await caps.countImpression(claims, issued, userKey);
    const click = clicks.take(claims.bidId);
    // A win heard past its notices' expiry still learns the click (the ledger settles it while it
    // remembers the bid), up to `clickUntil`, as far as the click's dedup key holds.
    if (click !== undefined && at <= click.until) await clicks.learnHeld(click, at);
    return answer;
  };
}
