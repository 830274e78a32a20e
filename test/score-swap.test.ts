import { rmSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { eventFiles, readEvents } from '../src/eventlog/read.js';
import type { BidRecord } from '../src/eventlog/records.js';
import { createBatcher } from '../src/score/batcher.js';
import type { CtrModel } from '../src/types.js';
import { startBidder } from './helpers/bidder.js';

/**
 * A model swap landing between the batches of one request: the request is scored by one model,
 * and its bids are logged under that model's version. A request whose rows exceed maxBatchRows is
 * queued in chunks, each scored in its own batch, and the event log read the serving version only
 * after the ledger answered.
 */

/** const-a scores every row 0.02, const-b 0.04: a pCTR tells which model computed it. */
const PCTR: Record<string, number> = { 'const-a': 0.02, 'const-b': 0.04 };

const hook = vi.hoisted(() => ({ onPredict: null as null | ((version: string, rows: number) => void) }));

function constantModel(version: string): CtrModel {
  const p = PCTR[version] ?? 0.01;
  return {
    version,
    kind: 'lr',
    specHash: 'const',
    backend: 'cpu',
    predict(_s, _d, rows) {
      hook.onPredict?.(version, rows);
      return new Float32Array(rows).fill(p);
    },
    dispose() {},
  };
}

// Each version loads as a constant model named after its folder, at once (no files read), so a
// reload asked during one batch has swapped before the next.
vi.mock('../src/model/store.js', async (importOriginal) => {
  const store = await importOriginal<typeof import('../src/model/store.js')>();
  return { ...store, loadModel: async (dir: string) => Object.assign(constantModel(basename(dir)), { meta: {} }) };
});

describe('batcher: a swap between the chunks of one request', () => {
  it('scores every chunk on one model, the one it answers with', async () => {
    const a = constantModel('const-a');
    const b = constantModel('const-b');
    let serving = a;
    const calls: [string, number][] = [];
    hook.onPredict = (version, rows) => {
      calls.push([version, rows]);
      // The swap lands right after the request's first batch.
      serving = b;
    };
    try {
      const batcher = createBatcher({ maxBatchRows: 4, maxQueueDelayUs: 0, sparseFields: 1, denseDim: 1, model: () => serving, clock: () => 0 });
      const scored = (await batcher.score(new Int32Array(10), new Float32Array(10), 10, 1000))!;
      expect(scored.model).toBe(b);
      expect(Array.from(scored.pctrs)).toEqual(new Array(10).fill(Math.fround(0.04)));
      // The first chunk, scored on const-a, is scored again on const-b; the others once.
      expect(calls).toEqual([
        ['const-a', 4],
        ['const-b', 4],
        ['const-b', 2],
        ['const-b', 4],
      ]);
    } finally {
      hook.onPredict = null;
    }
  });

  it('gives up at the deadline when swaps keep landing between its chunks', async () => {
    const models = [constantModel('const-a'), constantModel('const-b')];
    let serving = 0;
    let now = 0;
    let calls = 0;
    hook.onPredict = () => {
      calls++;
      now += 10;
      serving = 1 - serving;
    };
    try {
      const batcher = createBatcher({ maxBatchRows: 4, maxQueueDelayUs: 0, sparseFields: 1, denseDim: 1, model: () => models[serving], clock: () => now });
      expect(await batcher.score(new Int32Array(8), new Float32Array(8), 8, 100)).toBeNull();
      expect(calls).toBeLessThanOrEqual(10);
    } finally {
      hook.onPredict = null;
    }
  });
});

describe('the bid record across a model swap', () => {
  /**
   * One request to a bidder serving const-a, with a swap to const-b asked during its first model
   * call; the models that scored its rows, and its bid records.
   */
  async function bidAcrossSwap(maxBatchRows: number, imps: number): Promise<{ scoredBy: string[]; serving: string | null; bids: BidRecord[] }> {
    const t = await startBidder({ batcher: { maxBatchRows, maxQueueDelayUs: 0 } });
    let closed = false;
    try {
      expect((await t.bidder.reloadModel('const-a')).ok).toBe(true);
      const scoredBy: string[] = [];
      hook.onPredict = (version) => {
        if (scoredBy.length === 0) void t.bidder.reloadModel('const-b');
        scoredBy.push(version);
      };
      const imp = Array.from({ length: imps }, (_, i) => ({ id: String(i + 1), bidfloor: 0.01, banner: { w: 300, h: 250 } }));
      const res = await t.bid({ id: 'swap', at: 2, tmax: 5000, cur: ['USD'], imp, site: { id: 's1', domain: 'news.example', cat: ['IAB12'] }, user: { id: 'user-1' } });
      expect(res.status).toBe(200);
      hook.onPredict = null;
      const serving = ((await (await fetch(`${t.url}/readyz`)).json()) as { model: string | null }).model;
      await t.bidder.close();
      closed = true;
      const bids: BidRecord[] = [];
      for await (const r of readEvents(eventFiles([`${t.dir}/events`]), () => {})) if (r.type === 'bid' && r.ctx.requestId === 'swap') bids.push(r);
      return { scoredBy, serving, bids };
    } finally {
      hook.onPredict = null;
      if (closed) rmSync(t.dir, { recursive: true, force: true });
      else await t.close();
    }
  }

  it('prices a request on one model and logs its version, when a swap lands between its batches', async () => {
    // Two rows a batch: the candidates of three imps are scored in several batches.
    const { scoredBy, bids } = await bidAcrossSwap(2, 3);
    // The swap did land between the request's batches.
    expect(scoredBy[0]).toBe('const-a');
    expect(scoredBy.at(-1)).toBe('const-b');
    expect(bids.length).toBeGreaterThan(1);
    expect([...new Set(bids.map((b) => b.pctr))]).toEqual([Math.fround(PCTR['const-b'])]);
    for (const b of bids) expect(b.modelVersion).toBe('const-b');
  });

  it('logs the version that scored the bid, not the one serving once the ledger answers', async () => {
    // One batch, on const-a; the swap lands while the request waits on the ledger.
    const { scoredBy, serving, bids } = await bidAcrossSwap(256, 1);
    expect(scoredBy).toEqual(['const-a']);
    expect(serving).toBe('const-b');
    expect(bids.length).toBe(1);
    expect(bids[0].pctr).toBe(Math.fround(PCTR['const-a']));
    expect(bids[0].modelVersion).toBe('const-a');
  });
});
