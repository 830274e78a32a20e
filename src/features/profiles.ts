/**
 * User behaviour kept per pseudonymous user key, updated from notices (win = the user saw an ad on
 * a page of these categories; click = the user clicked an ad of these categories). Bounded twice:
 * an LRU over users and a fixed history length per user, so memory stays flat under any traffic.
 * The same store feeds the bidder and the simulator's training rows, so both see identical profiles.
 */
import { LRUCache } from 'lru-cache';
import type { UserProfile } from '../types.js';

export interface ProfileStoreOptions {
  maxUsers?: number;
  /** Categories kept per list, newest last. */
  historyLength?: number;
  /** Frequency window for `campaignImpressions`, seconds. */
  windowSec?: number;
  clock: () => number;
}

export interface ProfileStore {
  get(userKey: string): UserProfile | undefined;
  recordImpression(userKey: string, campaignId: string, pageCategories: readonly string[]): void;
  recordClick(userKey: string, adCategories: readonly string[]): void;
  readonly size: number;
}

interface Entry {
  profile: UserProfile;
  windowStartMs: number;
}

export function createProfileStore(opts: ProfileStoreOptions): ProfileStore {
  const historyLength = opts.historyLength ?? 20;
  const windowMs = (opts.windowSec ?? 86_400) * 1000;
  const clock = opts.clock;
  const cache = new LRUCache<string, Entry>({ max: opts.maxUsers ?? 100_000 });

  function entry(userKey: string): Entry {
    const now = clock();
    let e = cache.get(userKey);
    if (e === undefined) {
      e = { profile: { seenCategories: [], clickedCategories: [], campaignImpressions: {} }, windowStartMs: now };
      cache.set(userKey, e);
    } else if (now - e.windowStartMs >= windowMs) {
      e.profile.campaignImpressions = {};
      e.windowStartMs = now;
    }
    return e;
  }

  function push(list: string[], items: readonly string[]) {
    for (const c of items) list.push(c);
    if (list.length > historyLength) list.splice(0, list.length - historyLength);
  }

  return {
    get(userKey) {
      if (userKey === '') return undefined;
      const e = cache.get(userKey);
      if (e === undefined) return undefined;
      if (clock() - e.windowStartMs >= windowMs) {
        e.profile.campaignImpressions = {};
        e.windowStartMs = clock();
      }
      return e.profile;
    },
    recordImpression(userKey, campaignId, pageCategories) {
      if (userKey === '') return;
      const p = entry(userKey).profile;
      push(p.seenCategories, pageCategories);
      p.campaignImpressions[campaignId] = (p.campaignImpressions[campaignId] ?? 0) + 1;
    },
    recordClick(userKey, adCategories) {
      if (userKey === '') return;
      push(entry(userKey).profile.clickedCategories, adCategories);
    },
    get size() {
      return cache.size;
    },
  };
}
