import type { BidOutcome } from '../types.js';
import { primaryUserKey } from '../users/keys.js';
import { logNotice } from './answers.js';
import type { NoticeDeps } from './deps.js';
import type { NoticeClaims } from './sign.js';

// Clicks waiting for their bid's win, at most this many (some 200 bytes each): past it the oldest
// is dropped, so clicks on bids that never win (their markup in a Prebid.js page) cannot grow it.
const MAX_HELD_CLICKS = 10_000;

interface HeldClick {
  campaignId: string;
  creativeId: string;
  userKey: string | undefined;
  /** The CTR model that priced the bid, where known (IssuedBid.ctrModel, else NoticeDeps.modelOfBid). */
  ctrModel: string | undefined;
  until: number;
  /**
   * A click heard past its expiry, on a bid not settled: it took no dedup key and is not logged
   * (most such bids lost). Counted when its win is heard, if no click on the bid took the key first.
   */
  uncounted?: NoticeClaims;
}

/**
 * What a click on an ad that ran teaches, and the first clicks on bids no win had been heard for,
 * by bid id, in arrival order: learnt when this process hears the win (a win notice reordered
 * behind the click, or one past the notices' expiry the ledger still settles), forgotten at
 * `clickUntil` (until when a click on the bid can be counted: the handler's), at a loss, or when
 * the map is full.
 */
export function createClickLearning(deps: Pick<NoticeDeps, 'ledger' | 'metrics' | 'pacer' | 'campaigns' | 'profiles' | 'eventLog' | 'clock' | 'now'>, clickUntil: (c: NoticeClaims) => number) {
  const { metrics } = deps;
  const heldClicks = new Map<string, HeldClick>();
  function holdClick(claims: NoticeClaims, userKey: string | undefined, ctrModel: string | undefined, late: boolean): HeldClick {
    const now = deps.clock();
    for (const [bidId, h] of heldClicks) {
      if (h.until >= now && heldClicks.size < MAX_HELD_CLICKS) break;
      heldClicks.delete(bidId);
    }
    const held: HeldClick = { campaignId: claims.campaignId, creativeId: claims.creativeId, userKey, ctrModel, until: clickUntil(claims), uncounted: late ? claims : undefined };
    heldClicks.set(claims.bidId, held);
    return held;
  }
  /**
   * What a click on an ad that ran teaches: the clicks counted, the pacer's calibration (under
   * `ctrModel`, the model that priced the bid, where known), the user's profile.
   */
  function learnClick(campaignId: string, creativeId: string, userKey: string | undefined, ctrModel: string | undefined, at: number): void {
    metrics.click(campaignId);
    deps.pacer.onClick(campaignId, creativeId, at, ctrModel);
    const campaign = deps.campaigns().get(campaignId);
    if (!userKey || !campaign) return;
    // A profile store that throws (a full Map) must not fail a win notice the ledger has settled,
    // which learns a click that waited for it; counted as the cap's failures are.
    try {
      deps.profiles.recordClick(primaryUserKey(userKey), campaign.cat);
    } catch {
      metrics.ledger('frequency', 0, true);
    }
  }
  /**
   * A held click whose bid's win settled: learnt. One heard past its expiry takes its dedup key
   * only now, and is learnt and logged only if it gets it: had it taken the key at its arrival, a
   * win heard by another process of a fleet, after a restart or after the click was dropped from
   * `heldClicks` left the key taken by a click nobody counted, and the user's next click, a
   * duplicate on a settled bid, minted a token whose conversion counted with no click record.
   * Whichever process first counts a click on the bid owns the key. Never throws: a win that calls
   * it has settled.
   */
  async function learnHeld(held: HeldClick, at: number): Promise<void> {
    if (held.uncounted !== undefined) {
      const lt = deps.now();
      try {
        const first = await deps.ledger.once(`c:${held.uncounted.bidId}`, held.until);
        metrics.ledger('state', (deps.now() - lt) / 1000, false);
        if (!first) return;
      } catch {
        // Not counted, as a click whose dedup fails.
        metrics.ledger('state', (deps.now() - lt) / 1000, true);
        return;
      }
      logNotice(deps.eventLog, 'click', at, held.uncounted);
    }
    learnClick(held.campaignId, held.creativeId, held.userKey, held.ctrModel, at);
  }
  /**
   * A win that settled while its click awaited the ledger (read its outcome as held, then awaited
   * the dedup) looked for the click before it was held, and went by: the outcome is read again once
   * the click is held. Learnt once: whichever of the win and this read finds it held takes it out.
   */
  async function learnIfWonMeanwhile(bidId: string, held: HeldClick, at: number): Promise<void> {
    const lt = deps.now();
    let outcome: BidOutcome;
    try {
      outcome = await deps.ledger.bidOutcome(bidId);
      metrics.ledger('state', (deps.now() - lt) / 1000, false);
    } catch {
      // Still held: a win heard later learns it.
      metrics.ledger('state', (deps.now() - lt) / 1000, true);
      return;
    }
    if (outcome !== 'settled' || heldClicks.get(bidId) !== held) return;
    heldClicks.delete(bidId);
    await learnHeld(held, at);
  }
  return {
    learnClick,
    holdClick,
    learnHeld,
    learnIfWonMeanwhile,
    /** Whether a click on the bid waits for its win. */
    isHeld: (bidId: string): boolean => heldClicks.has(bidId),
    /** The click waiting for the bid's win, taken out (the win is heard), if any. */
    take(bidId: string): HeldClick | undefined {
      const click = heldClicks.get(bidId);
      if (click !== undefined) heldClicks.delete(bidId);
      return click;
    },
    /** Forgets the bid's held click (its loss is heard). */
    drop(bidId: string): void {
      heldClicks.delete(bidId);
    },
  };
}
