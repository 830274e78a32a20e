import { describe, expect, it } from 'vitest';
import { createProfileStore } from '../src/features/profiles.js';

describe('profile store', () => {
  it('keeps bounded history, counts campaign impressions in a window, evicts LRU', () => {
    let now = 0;
    const store = createProfileStore({ maxUsers: 2, historyLength: 3, windowSec: 10, clock: () => now });
    expect(store.get('u1')).toBeUndefined();
    store.recordImpression('u1', 'c1', ['IAB1', 'IAB2']);
    store.recordImpression('u1', 'c1', ['IAB3', 'IAB4']);
    store.recordClick('u1', ['IAB9']);
    expect(store.get('u1')).toEqual({ seenCategories: ['IAB2', 'IAB3', 'IAB4'], clickedCategories: ['IAB9'], campaignImpressions: { c1: 2 } });
    now = 11_000;
    expect(store.get('u1')?.campaignImpressions).toEqual({});
    store.recordImpression('u2', 'c1', []);
    store.recordImpression('u3', 'c1', []);
    expect(store.get('u1')).toBeUndefined();
    expect(store.size).toBe(2);
    store.recordImpression('', 'c1', ['IAB1']);
    expect(store.get('')).toBeUndefined();
  });
});
