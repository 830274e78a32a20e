import { readFileSync, rmSync } from 'node:fs';
import pino from 'pino';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { EventRecord } from '../src/eventlog/records.js';
import { eventFiles, readEvents } from '../src/eventlog/read.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * A model that passed every load check but misbehaves on some rows (scores bent here, after the
 * load), and a bid recorded with a pCTR that is no probability: neither may cost money nor
 * answer 500.
 */
const bend = vi.hoisted(() => ({ scores: null as null | ((p: Float32Array) => void), pctr: null as null | number }));

vi.mock('../src/model/store.js', async (importOriginal) => {
  const store = await importOriginal<typeof import('../src/model/store.js')>();
  return {
    ...store,
    loadModel: async (...args: Parameters<typeof store.loadModel>) => {
      const m = await store.loadModel(...args);
      const predict = m.predict.bind(m);
      m.predict = (sparse, dense, rows) => {
        const p = predict(sparse, dense, rows);
        bend.scores?.(p);
        return p;
      };
      return m;
    },
  };
});

vi.mock('../src/notices/issued.js', async (importOriginal) => {
  const issued = await importOriginal<typeof import('../src/notices/issued.js')>();
  return {
    ...issued,
    createIssuedBids: (...args: Parameters<typeof issued.createIssuedBids>) => {
      const bids = issued.createIssuedBids(...args);
      const get = bids.get.bind(bids);
      return { ...bids, get: (id: string) => Object.assign({}, get(id), bend.pctr === null ? {} : { pctr: bend.pctr }) };
    },
  };
});

const req = (id: string) => ({ id, at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });

async function records(t: TestBidder): Promise<EventRecord[]> {
  await t.bidder.close();
  const out: EventRecord[] = [];
  for await (const r of readEvents(eventFiles([`${t.dir}/events`]), () => {})) out.push(r);
  rmSync(t.dir, { recursive: true, force: true });
  return out;
}

const remainingUsd = (t: TestBidder) => t.metric('bidder_budget_remaining_usd');

describe('scores that are no probability', () => {
  beforeAll(() => {
    bend.scores = null;
    bend.pctr = null;
  });
  afterEach(() => {
    bend.scores = null;
    bend.pctr = null;
  });

  it('every pCTR NaN: a no-bid (nbr 1), never a 500, nothing reserved; said once in the log', async () => {
    const lines: string[] = [];
    const t = await startBidder({}, 'policies', { logger: pino({ level: 'info' }, { write: (l: string) => void lines.push(l) }) });
    try {
      expect((await t.bid(req('sound'))).status).toBe(200);
      const before = await remainingUsd(t);
      bend.scores = (p) => p.fill(NaN);
      for (let i = 0; i < 10; i++) expect((await t.bid(req(`nan-${i}`))).status).toBe(204);
      const eu = await t.bid(req('nan-eu'), 'demo-eu');
      expect(await eu.json()).toEqual({ id: 'nan-eu', nbr: 1 });
      expect(await remainingUsd(t)).toBeCloseTo(before, 9);
      expect(await t.metric('bidder_nobid_total', { reason: 'TECHNICAL_ERROR' })).toBe(11);
      expect(await t.metric('bidder_internal_errors_total')).toBe(0);
      expect(lines.filter((l) => l.includes('not probabilities strictly inside (0, 1)'))).toEqual([expect.stringContaining(`"version":"${readFileSync('models/CURRENT', 'utf8').trim()}"`)]);
    } finally {
      await t.close();
    }
  });

  it('every pCTR exactly 1 or 0 (a saturated sigmoid): a no-bid, nothing reserved nor priced; said once in the log', async () => {
    // An imageEmbedding ×100 saturated lr-v3 to exactly 1 and the creative was bid on at its cap.
    const lines: string[] = [];
    const t = await startBidder({}, 'policies', { logger: pino({ level: 'info' }, { write: (l: string) => void lines.push(l) }) });
    try {
      expect((await t.bid(req('sound'))).status).toBe(200);
      const before = await remainingUsd(t);
      let n = 0;
      bend.scores = (p) => p.fill(n++ % 2 === 0 ? 1 : 0);
      for (let i = 0; i < 10; i++) expect((await t.bid(req(`saturated-${i}`))).status).toBe(204);
      expect(await remainingUsd(t)).toBeCloseTo(before, 9);
      expect(await t.metric('bidder_nobid_total', { reason: 'TECHNICAL_ERROR' })).toBe(10);
      expect(lines.filter((l) => l.includes('not probabilities strictly inside (0, 1)'))).toEqual([expect.stringContaining('"first":"1"')]);
    } finally {
      await t.close();
    }
  });

  it('some pCTRs negative, over 1 or infinite: those candidates are dropped, the others still bid', async () => {
    const t = await startBidder();
    const odd = [-0.9998, 1.5, Infinity, -Infinity];
    // Every other row scored, counted across batches: a request may have a single candidate.
    let row = 0;
    bend.scores = (p) => {
      for (let i = 0; i < p.length; i++, row++) if (row % 2 === 0) p[i] = odd[(row / 2) % odd.length];
    };
    let bids = 0;
    for (let i = 0; i < 30; i++) {
      const r = await t.bid(req(`odd-${i}`));
      expect([200, 204]).toContain(r.status);
      if (r.status === 200) bids++;
    }
    expect(bids).toBeGreaterThan(0);
    expect(await t.metric('bidder_nobid_total', { reason: 'TECHNICAL_ERROR' })).toBeGreaterThan(0);
    expect(await t.metric('bidder_internal_errors_total')).toBe(0);
    const logged = (await records(t)).filter((r) => r.type === 'bid') as Extract<EventRecord, { type: 'bid' }>[];
    expect(logged).toHaveLength(bids);
    for (const b of logged) expect(b.pctr >= 0 && b.pctr <= 1, `pctr ${b.pctr}`).toBe(true);
  });

  it('a win for a bid recorded with a negative pCTR settles once, answers 200 and reaches the event log', async () => {
    const t = await startBidder();
    const r = await t.bid(req('neg-win'));
    expect(r.status).toBe(200);
    const bid = (await r.json()).seatbid[0].bid[0];
    const url = t.url + bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', (bid.price / 2).toFixed(4));
    bend.pctr = -0.9998;
    expect((await fetch(url)).status).toBe(200);
    expect((await fetch(url)).status).toBe(200);
    expect(await t.metric('bidder_notices_total', { kind: 'win', result: 'ok' })).toBe(1);
    expect(await t.metric('bidder_wins_total')).toBe(1);
    expect(await t.metric('bidder_internal_errors_total')).toBe(0);
    expect((await records(t)).filter((e) => e.type === 'win' && e.bidId === bid.id)).toHaveLength(1);
  });
});
