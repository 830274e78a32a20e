import type { BidOutcome } from '../types.js';
import { BidderError } from '../errors/codes.js';
import type { Answer } from '../errors/answer.js';
import { logNotice, refuse } from './answers.js';
import type { createConversions } from './conversions.js';
import type { NoticeDeps } from './deps.js';
import type { createClickLearning } from './held-clicks.js';
import type { IssuedBid } from './issued.js';
import type { NoticeClaims } from './sign.js';

interface ClickParts {
  /** Until when a click on this bid can be counted (the handler's `clickUntil`). */
  clickUntil: (c: NoticeClaims) => number;
  clicks: Pick<ReturnType<typeof createClickLearning>, 'isHeld' | 'holdClick' | 'learnClick' | 'learnIfWonMeanwhile'>;
  conversions: Pick<ReturnType<typeof createConversions>, 'clickToken'>;
}

/**
 * Click notices, their signature verified: counted once (on an ad that ran; one whose win is not
 * heard yet waits for it), and the user sent on to the landing page with a conversion token.
 * `prefetch`: a browser's or link expander's prefetch, counted as such and nothing else.
 */
export function createClickNotices(deps: Pick<NoticeDeps, 'ledger' | 'metrics' | 'eventLog' | 'landingUrl' | 'clock' | 'now'>, parts: ClickParts) {
  const { metrics } = deps;
  const { clickUntil, clicks, conversions } = parts;
  return async function click(claims: NoticeClaims, issued: IssuedBid | undefined, ctrModel: string | undefined, late: boolean, prefetch: boolean): Promise<Answer> {
    // Click: record once, then send the user on to the landing page with a conversion token. A
    // click on an old ad (expired, or its creative since removed by a reload) still reaches the
    // landing page.
    const landingUrl = deps.landingUrl(claims.campaignId, claims.creativeId);
    if (landingUrl === undefined) return refuse(metrics, 'click', 'malformed', new BidderError('NOTICE_MALFORMED', 'unknown creative'));
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
      if (clicks.isHeld(claims.bidId)) metrics.notice('click', 'duplicate');
      else {
        metrics.notice('click', 'expired');
        await clicks.learnIfWonMeanwhile(claims.bidId, clicks.holdClick(claims, issued?.userKey || claims.userKey, ctrModel, true), deps.clock());
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
        clicks.learnClick(claims.campaignId, claims.creativeId, userKey, ctrModel, at);
        logNotice(deps.eventLog, 'click', at, claims);
      } else {
        metrics.notice('click', 'unsettled');
        const held = clicks.holdClick(claims, userKey, ctrModel, false);
        logNotice(deps.eventLog, 'click', at, claims);
        await clicks.learnIfWonMeanwhile(claims.bidId, held, at);
      }
    }
    // A repeat click mints a token too (its conversion is deduplicated by the bid): the dedup key
    // it found taken was taken by a click that was counted (logged), in time or, past the expiry,
    // on a bid the ledger had settled; a late click on a bid not settled takes none until it is
    // counted (learnHeld). So a duplicate never mints a token for a bid no click was counted on.
    return { status: 302, body: '', headers: { location: withQuery(landingUrl, `rtbclk=${conversions.clickToken(claims, outcome === 'settled')}`) } };
  };
}

/** `url` with `param` added to its query: before any `#fragment`, which the landing server never sees. */
export function withQuery(url: string, param: string): string {
  const hash = url.indexOf('#');
  const base = hash < 0 ? url : url.slice(0, hash);
  return `${base}${base.includes('?') ? '&' : '?'}${param}${hash < 0 ? '' : url.slice(hash)}`;
}
