import type { FleetOpportunities } from '../fleet/opportunities.js';

const MINUTE_MS = 60_000;
/** How fast a minute's counts are forgotten: a routing change is followed within a few minutes. */
const HALF_LIFE_MINUTES = 5;
/**
 * The fleet's opportunities (faded sums) a campaign needs before it paces a share of its own: at
 * 200 a share of 0.5 is measured within ±0.035; with fewer the process's share stands.
 */
const MIN_FLEET_OPPORTUNITIES = 200;
/** How far a measured share may move from the one in force before it is taken (a fraction of it): each move re-solves the campaign. */
const SHARE_STEP = 0.05;
/** The least share, a fraction of the process's: a bidder the balancer sends none of a campaign's auctions can still pace them when they come back. */
const SHARE_FLOOR = 0.1;

/**
 * Per campaign, the share of its budget this bidder paces where the fleet's opportunities for it
 * are measured (docs/fleet.md, "A campaign's own share").
 */
export interface CampaignShares {
  /** The campaigns paced on a share of their own, and it. */
  shares(): ReadonlyMap<string, number>;
  /**
   * At every fleet sync: once a minute (of Redis's clock) has passed, publishes this bidder's
   * opportunities of the minute before and folds in the fleet's of the minute before that.
   * `processShare` is the share every other campaign paces (the floor's reference). A failed write
   * or read changes nothing and throws.
   */
  update(processShare: number): Promise<void>;
}

/**
 * `counts`: per campaign, the opportunities this bidder was asked to price since some start (the
 * value pacer's `opportunityCounts`), read at each minute's first sync, so a "minute" is the span
 * between two of them, alike on every bidder syncing every `fleetSyncMs`. The minutes are Redis's
 * (the fleet's script names them): this bidder reckons them by its clock plus the difference to
 * Redis's its last call measured, so a bidder whose clock is off by any amount writes and reads the
 * same minutes as the others. The first sync only measures that difference; the first span (from
 * it) is partial and never published; a minute's bucket is read one minute after it ended,
 * when every bidder syncing at least once a minute has written its part. A campaign's share is its
 * faded own count over the fleet's, once the fleet's holds MIN_FLEET_OPPORTUNITIES: equal to the
 * process's share (within noise) where the balancer spreads every campaign alike, and up to 1
 * where it sends a campaign's auctions to this bidder alone.
 */
export function createCampaignShares(o: { fleet: FleetOpportunities; counts: () => ReadonlyMap<string, number>; clock: () => number; onShares?: (measured: number) => void }): CampaignShares {
  const fade = Math.pow(0.5, 1 / HALF_LIFE_MINUTES);
  // The minute in progress, by Redis's clock as reckoned here; Redis's clock less this bidder's.
  let minute = NaN;
  let started = NaN;
  let offset = NaN;
  let last = new Map<string, number>();
  // This bidder's counts of minutes published and not yet paired with the fleet's.
  const pending = new Map<number, ReadonlyMap<string, number>>();
  const faded = new Map<string, { own: number; fleet: number }>();
  const inForce = new Map<string, number>();
  return {
    shares: () => inForce,
    async update(processShare) {
      if (Number.isNaN(offset)) {
        const baseline = new Map(o.counts());
        const at = o.clock();
        const r = await o.fleet(null);
        offset = r.nowMs - at;
        minute = started = Math.floor(r.nowMs / MINUTE_MS);
        last = baseline;
        return;
      }
      const now = Math.floor((o.clock() + offset) / MINUTE_MS);
      if (now <= minute) return;
      const ended = minute;
      const counts = o.counts();
      const own = new Map<string, number>();
      for (const [id, n] of counts) {
        // A campaign new to the count (added, or added back with the count its pace kept all
        // along) is counted from here: its first span is partial, and a pace brought back the
        // same day published everything since start-up as one minute's.
        const was = last.get(id);
        if (was !== undefined && n > was) own.set(id, n - was);
      }
      // Only a whole minute is published: the first (from start-up), or one a stalled sync stretched over several, would be read beside the others' minutes.
      const whole = ended > started && now === ended + 1;
      // Moved on before the call: a write that timed out has mostly run in Redis, and sent again at
      // the next sync it counted that minute twice. A minute whose call failed is not paired.
      last = new Map(counts);
      minute = now;
      const at = o.clock();
      // The minute just ended by this reckoning: the script takes it within a minute of Redis's
      // (a write may land up to a sync period after its minute ends).
      const r = await o.fleet(whole ? own : null, now - 1);
      // The script's minute, not the reckoning: this bidder's clock may have stepped since the last call.
      offset = r.nowMs - at;
      minute = r.minute + 1;
      if (whole) pending.set(r.minute, own);
      const mine = pending.get(r.minute - 1);
      for (const m of pending.keys()) if (m <= r.minute - 1) pending.delete(m);
      if (mine === undefined) return;
      fold(mine, r.counts, processShare);
    },
  };

  function fold(mine: ReadonlyMap<string, number>, fleet: ReadonlyMap<string, number>, processShare: number): void {
    for (const f of faded.values()) ((f.own *= fade), (f.fleet *= fade));
    for (const [id, n] of fleet) {
      let f = faded.get(id);
      if (f === undefined) faded.set(id, (f = { own: 0, fleet: 0 }));
      f.fleet += n;
      // Never above the fleet's: this bidder's count is in it.
      f.own += Math.min(n, mine.get(id) ?? 0);
    }
    for (const [id, f] of faded) {
      if (f.fleet < 1e-3) {
        faded.delete(id);
        inForce.delete(id);
        continue;
      }
      if (f.fleet < MIN_FLEET_OPPORTUNITIES) {
        inForce.delete(id);
        continue;
      }
      const target = Math.min(1, Math.max(SHARE_FLOOR * processShare, f.own / f.fleet));
      const was = inForce.get(id);
      if (was !== undefined && Math.abs(target - was) <= SHARE_STEP * was) continue;
      inForce.set(id, target);
    }
    o.onShares?.(inForce.size);
  }
}

/** What both pacers keep per campaign for its own share: the share (NaN: the pacer's), its next decision, its opportunities asked. */
interface SharedPace {
  share: number;
  slotEnd: number;
  asked: number;
}

/** A pacer's `setCampaignShares`: each pace takes its campaign's share (NaN where none), and one whose share changed decides again. */
export function applyCampaignShares(paces: ReadonlyMap<string, SharedPace>, shares: ReadonlyMap<string, number>): void {
  for (const [id, p] of paces) {
    const next = shares.get(id) ?? NaN;
    if (next === p.share || (Number.isNaN(next) && Number.isNaN(p.share))) continue;
    if (!Number.isNaN(next) && !(next > 0 && next <= 1)) throw new Error(`share of ${id} must be in (0, 1]`);
    p.share = next;
    p.slotEnd = -Infinity;
  }
}

/** A pacer's `opportunityCounts`. */
export function opportunityCountsOf(paces: ReadonlyMap<string, SharedPace>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [id, p] of paces) counts.set(id, p.asked);
  return counts;
}
