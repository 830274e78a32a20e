/**
 * Labelled training/evaluation rows from a simulated day. Each request goes through the bidder's
 * own eligibility stage (so the ImpContext is built exactly as the bid path builds it) and the
 * shared feature builder; one eligible creative is shown per imp, chosen uniformly at random (an
 * exploration logging policy, so the rows cover every eligible pair without the selection bias of
 * a greedy bidder), and its click is drawn from the hidden true CTR.
 */
import { buildCatalogState } from '../live/build.js';
import { createPrivacy } from '../eligibility/privacy.js';
import { SIM_VENDOR_ID } from './market.js';
import { createFeatureBuilder, type FeatureBuilder, type PreparedCreative } from '../features/features.js';
import { createProfileStore, type ProfileStore } from '../features/profiles.js';
import type { Campaign, Creative, ImpContext, UserProfile } from '../types.js';
import { createMarket, type Market, type MarketProfile, type SimRequest } from './market.js';
import type { Dataset } from '../model/dataset.js';

export type { Dataset } from '../model/dataset.js';

/** One shown impression, as the bidder would have seen it. */
export interface ShownImpression {
  sr: SimRequest;
  ctx: ImpContext;
  campaign: Campaign;
  creative: Creative;
  prepared: PreparedCreative;
  /** Profile as the features saw it (undefined when user data is not allowed or unknown). */
  profile: UserProfile | undefined;
  pTrue: number;
  /** Whether the impression was won (always, without a `bidCpm` policy). */
  won: boolean;
  clicked: boolean;
  floorUsd: number;
  dealId: string;
  /** The logging policy's bid, the highest competing bid and the price paid (CPM USD; 0 when unknown). */
  bidCpm: number;
  competingCpm: number;
  clearingCpm: number;
}

export interface ShowOptions {
  market: Market;
  campaigns: readonly Campaign[];
  builder: FeatureBuilder;
  /** Stop after this many impressions (won or lost). */
  maxImpressions?: number;
  /**
   * Bid of the logging policy for a pick (CPM USD). With it, each pick meets the market's highest
   * competing bid under the request's auction type and only wins are shown and can be clicked;
   * without it every pick is shown (the counterfactual rows training wants).
   */
  bidCpm?: (campaign: Campaign, floorUsd: number) => number;
}

/** Pseudonymous user key for the simulated bidder (the real bidder uses a keyed hash of its own). */
export function simUserKey(id: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return `k${(h >>> 0).toString(36)}${id.length.toString(36)}`;
}

/**
 * Walks the day's traffic and yields one shown impression per imp that has an eligible creative.
 * Profiles are updated as the day goes: the bidder's store from what it may see (consented users,
 * by pseudonymous key), the truth's store from everything the user really did.
 */
export function* showImpressions(opts: ShowOptions): Generator<ShownImpression> {
  const { market, builder } = opts;
  let now = market.startMs;
  const clock = () => now;
  const bidderProfiles: ProfileStore = createProfileStore({ clock, maxUsers: 100_000 });
  const trueProfiles: ProfileStore = createProfileStore({ clock, maxUsers: 100_000 });
  const { eligibility, prepared } = buildCatalogState(opts.campaigns, builder, {
    ratesPerUsd: new Map([['USD', 1]]),
    privacy: createPrivacy({ vendorId: SIM_VENDOR_ID }),
    clock,
    userKey: (req) => (typeof req.user?.id === 'string' ? simUserKey(req.user.id) : ''),
    isPaused: () => false,
    frequency: (userKey, campaignId) => bidderProfiles.get(userKey)?.campaignImpressions[campaignId] ?? 0,
  });
  const rng = market.rng;
  const max = opts.maxImpressions ?? Infinity;
  let shown = 0;
  for (const sr of market.requests()) {
    if (shown >= max) return;
    now = sr.tsMs;
    const plan = eligibility.plan(sr.request, sr.exchange, 'USD');
    if (plan.reason !== '') continue;
    for (const ip of plan.imps) {
      if (ip.eligible.length === 0) continue;
      const pick = ip.eligible[rng.int(ip.eligible.length)];
      const { campaign, creative } = pick.cand;
      const ctx = ip.ctx;
      const profile = ctx.userDataAllowed && ctx.userKey !== '' ? bidderProfiles.get(ctx.userKey) : undefined;
      const trueProfile = sr.userKnown ? trueProfiles.get(sr.user.id) : undefined;
      const pTrue = market.trueCtr(sr, creative, campaign, trueProfile);
      let won = true;
      let bidCpm = 0;
      let competingCpm = 0;
      let clearingCpm = 0;
      if (opts.bidCpm) {
        bidCpm = opts.bidCpm(campaign, pick.floorUsd);
        competingCpm = market.competingBidCpm(sr);
        won = bidCpm >= pick.floorUsd && bidCpm > competingCpm;
        // First price pays the bid; second price the runner-up (competitor or floor).
        clearingCpm = !won ? 0 : sr.request.at === 2 ? Math.max(competingCpm, pick.floorUsd) : bidCpm;
      }
      const clicked = won && rng.next() < pTrue;
      yield {
        sr, ctx, campaign, creative, prepared: prepared.get(creative.id)!, profile, pTrue, won, clicked,
        floorUsd: pick.floorUsd, dealId: pick.dealId, bidCpm, competingCpm, clearingCpm,
      };
      shown++;
      if (!won) continue;
      // After the consumer read the profile: the impression and click change the next request's.
      if (sr.userKnown) {
        trueProfiles.recordImpression(sr.user.id, campaign.id, ctx.categories);
        if (clicked) trueProfiles.recordClick(sr.user.id, campaign.cat);
      }
      if (profile !== undefined || (ctx.userDataAllowed && ctx.userKey !== '')) {
        bidderProfiles.recordImpression(ctx.userKey, campaign.id, ctx.categories);
        if (clicked) bidderProfiles.recordClick(ctx.userKey, campaign.cat);
      }
    }
  }
}

/** Feature rows, labels and true probabilities for up to `maxRows` shown impressions of a day. */
export function simulateDataset(opts: ShowOptions & { maxRows: number }): Dataset {
  const { builder, maxRows } = opts;
  const { sparse, dense } = builder.allocate(maxRows);
  const labels = new Float32Array(maxRows);
  const truth = new Float32Array(maxRows);
  let r = 0;
  for (const s of showImpressions({ ...opts, maxImpressions: maxRows })) {
    builder.writeRow(s.ctx, s.prepared, s.profile, sparse, dense, r);
    labels[r] = s.clicked ? 1 : 0;
    truth[r] = s.pTrue;
    r++;
  }
  const F = builder.spec.sparseFields;
  const D = builder.spec.denseDim;
  return { rows: r, sparse: sparse.subarray(0, r * F), dense: dense.subarray(0, r * D), labels: labels.subarray(0, r), truth: truth.subarray(0, r) };
}

export interface SimDataOptions {
  seed: number;
  worldSeed: number;
  rows: number;
  campaigns: readonly Campaign[];
  /** Market calibration (default 'demo'). */
  market?: MarketProfile;
}

/** Rows of one simulated day; requests are sized so that `rows` impressions get an eligible creative. */
export function simulatedRows(o: SimDataOptions): Dataset {
  const builder = createFeatureBuilder();
  // About 3 in 4 requests have an eligible creative in the demo catalog; the margin avoids a short day.
  const market = createMarket({ seed: o.seed, worldSeed: o.worldSeed, campaigns: o.campaigns, requestsPerDay: Math.ceil(o.rows * 1.5), profile: o.market });
  return simulateDataset({ market, campaigns: o.campaigns, builder, maxRows: o.rows });
}
