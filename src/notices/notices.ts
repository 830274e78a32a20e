import type { NoticeKind } from '../types.js';
import { BidderError } from '../errors/codes.js';
import type { Answer } from '../errors/answer.js';
import { OK, refuse } from './answers.js';
import { createCapCounting } from './caps.js';
import { createClickNotices } from './click.js';
import { createConversions } from './conversions.js';
import type { NoticeDeps } from './deps.js';
import { createClickLearning } from './held-clicks.js';
import { createLossInference } from './loss-inference.js';
import { createLossNotices } from './loss.js';
import { MTW_PLAUSIBLE_FACTOR } from './prices.js';
import { parseQuery } from './query.js';
import { createRetryQueue } from './retry.js';
import { createSettlement } from './settle.js';
import { parseClaims, type NoticeClaims } from './sign.js';
import { createWinFeedback } from './win-feedback.js';

// The handler's parts, each in a module named after what it does: what it is built from
// (deps.ts); a notice's price (prices.ts); an impression's ledger settlement and its retry
// (settle.ts, retry.ts); what a settled impression teaches the pacer and the shader
// (win-feedback.ts); losses (loss.ts) and the inference of unheard ones (loss-inference.ts);
// clicks (click.ts) and those held until their win (held-clicks.ts); frequency caps (caps.ts);
// conversions (conversions.ts); the answers and the event log's record (answers.ts).
export type { NoticeDeps, NoticePeers } from './deps.js';
export { lostOnPrice, parsePrice, priceRounding } from './prices.js';
export { createLossInference } from './loss-inference.js';
export { withQuery } from './click.js';

// The longest notice query read, in characters: a signed URL with the exchange's macros filled is
// some 300, and at most about 700 with ids of the most characters the policies admit. Its length is the sender's to pick, and each notice's work and any retry held for it
// grow with it (review soak: 40,000-character wins were answered 200).
const MAX_NOTICE_QUERY = 8192;

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
  const retries = createRetryQueue({ metrics, now: () => deps.now(), retry: (kind, query, attempt) => void handleNotice(kind, query, false, attempt).catch(() => {}) });
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
  const clicks = createClickLearning(deps, clickUntil);
  const caps = createCapCounting(deps);
  const conversions = createConversions(deps, clickUntil);
  const settle = createSettlement(deps, { caps, clicks, retries, learnWin: createWinFeedback(deps) });
  const loss = createLossNotices(deps, clicks);
  const click = createClickNotices(deps, { clickUntil, clicks, conversions });

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
   * A notice of a bid answered to a `test: 1` request: acknowledged and counted, and nothing else —
   * no reservation was made for it, so nothing settles or is released, and no pacer, shading,
   * profile or event-log record learns from it. A click still reaches the landing page.
   */
  function testNotice(kind: NoticeKind, claims: NoticeClaims): Answer {
    metrics.notice(kind, 'test');
    if (kind !== 'click') return OK;
    const landing = deps.landingUrl(claims.campaignId, claims.creativeId);
    if (landing === undefined) return refuse(metrics, kind, 'malformed', new BidderError('NOTICE_MALFORMED', 'unknown creative'));
    return { status: 302, body: '', headers: { location: landing } };
  }

  /**
   * `prefetch`: the request says it is a browser's or a link expander's prefetch (`Sec-Purpose`,
   * `Purpose`), not a user's click: the landing page is answered, nothing is counted and no token
   * minted, and the answer is not to be stored, so the user's own click comes back to be counted.
   */
  function handleNotice(kind: NoticeKind, query: string, prefetch = false, attempt = 0): Promise<Answer> {
    // Not an async function, so that a notice's answer settles when its part's does, as when the
    // parts were one function; what its reading of the notice throws still rejects.
    try {
      const answer = routeNotice(kind, query, prefetch, attempt);
      return answer instanceof Promise ? answer : Promise.resolve(answer);
    } catch (err) {
      return Promise.reject(err);
    }
  }
  // A conversion's answer settles as the one function's did, which returned the conversion's promise.
  const asNotice = async (answer: Promise<Answer>): Promise<Answer> => answer;

  /** The notice verified and sent to its part: settlement, loss or click (conversions have their token). */
  function routeNotice(kind: NoticeKind, query: string, prefetch: boolean, attempt: number): Answer | Promise<Answer> {
    // A conversion keeps nothing of its query (its fields are the token's) and its sender appends what it likes.
    if (query.length > MAX_NOTICE_QUERY && kind !== 'conversion') return refuse(metrics, kind, 'malformed', new BidderError('NOTICE_MALFORMED', `query longer than ${MAX_NOTICE_QUERY} characters`));
    const q = parseQuery(query);
    if (kind === 'conversion') return asNotice(conversions.conversion(q));
    // The exchange's URLs carry a tag for their own route (a win URL is no billing notice); click,
    // impression-tracker and player-event URLs sit in the markup, so they carry a public signature
    // (the impression tracker's its own) and no price.
    const exchange = kind === 'win' || kind === 'billing' || kind === 'loss';
    const scope = exchange ? kind : kind === 'impression' ? 'impression' : 'click';
    const parsed = parseClaims(q, !exchange);
    if (!parsed) return refuse(metrics, kind, 'malformed', new BidderError('NOTICE_MALFORMED'));
    const { claims, sig } = parsed;
    if (!deps.signer.verify(claims, sig, scope)) return refuse(metrics, kind, 'forged', new BidderError('NOTICE_BAD_SIGNATURE'));
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
    if (rate === undefined && exchange) return refuse(metrics, kind, 'malformed', new BidderError('NOTICE_MALFORMED', 'currency'));
    const issued = deps.issued.get(claims.bidId);
    // The model that priced the bid, for the win and the click: the ring's record, else the model
    // serving when the bid was made. Without the latter, a win heard in time went to the model left
    // and its click, heard past the ring's TTL (clicks count up to the ledger's retention), to the
    // model serving: one had an impression without its click, the other a click without one.
    const ctrModel = issued?.ctrModel ?? deps.modelOfBid?.(claims.expiresAtMs);

    if (kind === 'win' || kind === 'billing' || kind === 'impression') return settle(kind, q, query, claims, issued, ctrModel, rate, late, attempt);
    if (kind === 'loss') return loss(q, claims, issued, rate!);
    return click(claims, issued, ctrModel, late, prefetch);
  }

  return Object.assign((kind: NoticeKind, query: string, prefetch = false) => handleNotice(kind, query, prefetch), {
    unheard,
    fromPeer,
    /** Drops the notices waiting to be tried again (the ledger is closing) and closes the peers. */
    close(): void {
      retries.close();
      deps.peers?.close?.();
    },
  });
}
