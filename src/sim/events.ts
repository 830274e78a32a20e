/**
 * A simulated bidder's event log: the same NDJSON records (src/eventlog/records.ts) the real bidder
 * writes, for a logging policy that bids on a random eligible creative. Notices arrive after
 * realistic delays and the log is written in arrival order, as a real log would be.
 */
import type { BidRecord, EventRecord, NoticeRecord } from '../eventlog/records.js';
import type { FeatureBuilder } from '../features/features.js';
import type { Campaign, Creative } from '../types.js';
import { showImpressions } from './dataset.js';
import type { Market } from './market.js';
import { TimeQueue } from './time-queue.js';

export interface EventLogSimOptions {
  market: Market;
  campaigns: readonly Campaign[];
  builder: FeatureBuilder;
  maxImpressions?: number;
  /** The logging policy's bid (CPM USD); default: just above the floor, at least 1.5, capped by maxBidCpmUsd. */
  bidCpm?: (campaign: Campaign, floorUsd: number) => number;
  modelVersion?: string;
}

export function defaultLoggingBid(campaign: Campaign, floorUsd: number): number {
  return Math.min(campaign.maxBidCpmUsd, Math.max(1.5, floorUsd * 1.2));
}

/** Yields the day's event records in arrival order. */
export function* simulateEventLog(o: EventLogSimOptions): Generator<EventRecord> {
  const { market } = o;
  const queue = new TimeQueue<EventRecord>();
  const bidCpm = o.bidCpm ?? defaultLoggingBid;
  // As the bidder logs it: training then checks each row's creative against the catalog it reads.
  const fingerprints = new Map<string, string>();
  const fingerprint = (cr: Creative, c: Campaign): string => {
    let f = fingerprints.get(cr.id);
    if (f === undefined) fingerprints.set(cr.id, (f = o.builder.prepareCreative(cr, c).fingerprint));
    return f;
  };
  for (const s of showImpressions({ market, campaigns: o.campaigns, builder: o.builder, maxImpressions: o.maxImpressions, bidCpm })) {
    const ts = s.sr.tsMs;
    while (queue.peekTs() <= ts) yield queue.pop();
    const bidId = `${s.ctx.requestId}-${s.ctx.impId}`;
    const base = { bidId, campaignId: s.campaign.id, creativeId: s.creative.id };
    const bid: BidRecord = {
      type: 'bid',
      ts,
      ...base,
      creativeFingerprint: fingerprint(s.creative, s.campaign),
      priceCpmUsd: s.bidCpm,
      pctr: 0,
      modelVersion: o.modelVersion ?? 'sim-random-policy',
      ctx: s.ctx,
      ...(s.profile !== undefined ? { profile: structuredClone(s.profile) } : {}),
    };
    yield bid;
    const winTs = ts + market.winNoticeDelayMs();
    if (!s.won) {
      // OpenRTB 2.6 List 5.25 loss reason 102: lost to a higher bid.
      queue.push({ type: 'loss', ts: winTs, ...base, lossReason: s.bidCpm < s.floorUsd ? 100 : 102 } satisfies NoticeRecord);
      continue;
    }
    queue.push({ type: 'win', ts: winTs, ...base, priceCpmUsd: s.clearingCpm } satisfies NoticeRecord);
    if (s.clicked) {
      const clickTs = winTs + market.clickDelayMs();
      queue.push({ type: 'click', ts: clickTs, ...base } satisfies NoticeRecord);
      if (market.rng.next() < market.conversionRate(s.campaign)) {
        queue.push({ type: 'conversion', ts: clickTs + market.conversionDelayMs(), ...base } satisfies NoticeRecord);
      }
    }
  }
  while (queue.peekTs() < Infinity) yield queue.pop();
}
