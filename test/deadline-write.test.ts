import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * A bid is written in the turn its deadline check passed. The requests one scoring batch and one
 * journal write resume run one after another in a single turn of microtasks; an answer written
 * by the server once the pipeline's promise settled came after every other request of the batch
 * had issued its bids (signing, event log, pacer), 12–54 ms after its own check at 1,440 req/s
 * (review load), a bid the exchange no longer waited for holding budget for the notice TTL.
 * What is seen here is the order, not the time: each bid recorded as issued (`issued.add`) and
 * each answer written (uWS `end`), in one log.
 */
const log = vi.hoisted(() => [] as string[]);

vi.mock('../src/notices/issued.js', async (importOriginal) => {
  const issued = await importOriginal<typeof import('../src/notices/issued.js')>();
  return {
    ...issued,
    createIssuedBids: (...args: Parameters<typeof issued.createIssuedBids>) => {
      const bids = issued.createIssuedBids(...args);
      const add = bids.add.bind(bids);
      return { ...bids, add: (id: string, b: Parameters<typeof add>[1]) => (log.push(`issue ${id}`), add(id, b)) };
    },
  };
});

// The native objects' methods bound to them, and each response's `end` logged with its body.
vi.mock('uWebSockets.js', async (importOriginal) => {
  const mod = await importOriginal<{ default: Record<string, unknown> }>();
  const uWS = mod.default;
  const bound = <T extends object>(target: T, wrap: (name: string, f: (...a: unknown[]) => unknown) => unknown): T =>
    new Proxy(target, {
      get(t, p) {
        const v = (t as Record<string | symbol, unknown>)[p];
        return typeof v === 'function' ? wrap(String(p), (v as (...a: unknown[]) => unknown).bind(t)) : v;
      },
    });
  const response = (res: object) =>
    bound(res, (name, f) => (name === 'end' || name === 'tryEnd' ? (body: unknown, ...rest: unknown[]) => (log.push(`write ${Buffer.from(body as Uint8Array | string).toString()}`), f(body, ...rest)) : f));
  const App = (...args: unknown[]) => {
    const app: object = bound((uWS.App as (...a: unknown[]) => object)(...args), (name, f) =>
      name === 'post' ? (pattern: string, handler: (res: object, req: unknown) => void) => (f(pattern, (res: object, req: unknown) => handler(response(res), req)), app) : f,
    );
    return app;
  };
  return { ...mod, default: { ...uWS, App } };
});

const req = (id: string) => ({ id, at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });

describe('a bid is written in the turn of its deadline check', () => {
  let t: TestBidder;
  beforeAll(async () => {
    // Requests sent together are scored in one batch (a 50 ms queue delay), so they resume together.
    t = await startBidder({ batcher: { maxBatchRows: 256, maxQueueDelayUs: 50_000 } });
  });
  afterAll(() => t.close());

  it('no other request issues bids between a request’s own bids and its answer', async () => {
    log.length = 0;
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => t.bid(req(`together-${i}`))));
    const bids = answers.filter((a) => a.status === 200).length;
    // Several bid answers of one batch, or the order below shows nothing.
    expect(bids).toBeGreaterThanOrEqual(2);
    const written = log.filter((e) => e.startsWith('write ') && e.includes('"seatbid"'));
    expect(written).toHaveLength(bids);
    for (const w of written) {
      const ids = [...w.matchAll(/"id":"([^"]+)","impid"/g)].map((m) => m[1]);
      expect(ids.length).toBeGreaterThan(0);
      const at = log.indexOf(w);
      const first = Math.min(...ids.map((id) => log.indexOf(`issue ${id}`)));
      expect(first).toBeGreaterThanOrEqual(0);
      // From the request's first bid issued to its answer written: its own bids only.
      const between = log.slice(first, at).filter((e) => e.startsWith('issue ') && !ids.includes(e.slice(6)));
      expect(between, `written after ${between.length} other bids were issued: ${w.slice(0, 80)}`).toEqual([]);
    }
  });
});
