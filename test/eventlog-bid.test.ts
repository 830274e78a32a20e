import { rmSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { eventFiles, readEvents } from '../src/eventlog/read.js';
import type { BidRecord } from '../src/eventlog/records.js';
import { createFeatureBuilder } from '../src/features/features.js';
import type { ProfileStore } from '../src/features/profiles.js';
import { prepareCreatives } from '../src/features/rows.js';
import { startBidder } from './helpers/bidder.js';

/**
 * The bid record as the real bidder logs it: what training rebuilds its row from must be what the
 * model scored, though notices for the same user are handled while the request waits on the
 * scorer and the ledger.
 */
const hook = vi.hoisted(() => ({ store: null as ProfileStore | null, keys: [] as string[], onPredict: null as null | (() => void) }));

vi.mock('../src/features/profiles.js', async (importOriginal) => {
  const profiles = await importOriginal<typeof import('../src/features/profiles.js')>();
  return {
    ...profiles,
    createProfileStore: (...args: Parameters<typeof profiles.createProfileStore>) => {
      const store = profiles.createProfileStore(...args);
      hook.store = store;
      const get = store.get.bind(store);
      store.get = (key) => (key && hook.keys.push(key), get(key));
      return store;
    },
  };
});

vi.mock('../src/model/store.js', async (importOriginal) => {
  const store = await importOriginal<typeof import('../src/model/store.js')>();
  return {
    ...store,
    loadModel: async (...args: Parameters<typeof store.loadModel>) => {
      const m = await store.loadModel(...args);
      const predict = m.predict.bind(m);
      m.predict = (sparse, dense, rows) => {
        hook.onPredict?.();
        return predict(sparse, dense, rows);
      };
      return m;
    },
  };
});

const req = (id: string) => ({ id, at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] }, user: { id: 'user-1' } });

describe('the bid record', () => {
  it("logs the user's profile as the features read it, not as a notice handled while scoring left it; and its creative's fingerprint", async () => {
    const t = await startBidder();
    try {
      expect((await t.bid(req('first'))).status).toBe(200);
      const key = hook.keys.at(-1)!;
      expect(key).toBeTruthy();
      hook.store!.recordImpression(key, 'acme-shoes', ['IAB12']);
      const scored = structuredClone(hook.store!.get(key));
      // A win notice for this user handled while the request is being scored.
      hook.onPredict = () => hook.store!.recordImpression(key, 'acme-shoes', ['IAB9']);
      expect((await t.bid(req('second'))).status).toBe(200);
      hook.onPredict = null;
      await t.bidder.close();
      const bids: BidRecord[] = [];
      for await (const r of readEvents(eventFiles([`${t.dir}/events`]), () => {})) if (r.type === 'bid') bids.push(r);
      const second = bids.find((b) => b.ctx.requestId === 'second')!;
      expect(scored).toEqual({ seenCategories: ['IAB12'], clickedCategories: [], campaignImpressions: { 'acme-shoes': 1 } });
      expect(second.profile).toEqual(scored);

      const prepared = prepareCreatives(loadPolicies('policies').campaigns, createFeatureBuilder());
      for (const b of bids) expect(b.creativeFingerprint).toBe(prepared.get(b.creativeId)!.fingerprint);
    } finally {
      hook.onPredict = null;
      rmSync(t.dir, { recursive: true, force: true });
    }
  });
});
