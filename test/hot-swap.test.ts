import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/** Swapping the model in a running bidder fails no request and never leaves it without a model. */
describe('model hot swap under concurrent load', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder({ adminToken: 'swap-token-0123456789' });
  });
  afterAll(() => t.close());

  it('answers every request while versions are swapped back and forth', async () => {
    const body = (i: number) => ({ id: `hs-${i}`, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: `s${i % 7}`, cat: ['IAB12'] }, user: { id: `u${i % 50}` } });
    const statuses = new Map<number, number>();
    let i = 0;
    let stop = false;
    const worker = async () => {
      while (!stop) {
        const r = await t.bid(body(i++));
        await r.arrayBuffer();
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }
    };
    const load = Array.from({ length: 16 }, worker);
    const versions: string[] = [];
    for (const version of ['lr-v2', 'dcn-v2', 'lr-v2', 'dcn-v2']) {
      const r = await fetch(`${t.url}/admin/reload/model`, {
        method: 'POST',
        headers: { authorization: 'Bearer swap-token-0123456789', 'content-type': 'application/json' },
        body: JSON.stringify({ version }),
      });
      expect(r.status).toBe(200);
      versions.push((await r.json()).version);
      await new Promise((r) => setTimeout(r, 150));
    }
    stop = true;
    await Promise.all(load);
    expect(versions).toEqual(['lr-v2', 'dcn-v2', 'lr-v2', 'dcn-v2']);
    expect([...statuses.keys()].every((s) => s === 200 || s === 204)).toBe(true);
    expect(statuses.get(200)).toBeGreaterThan(0);
    expect(await t.metric('bidder_nobid_total', { reason: 'MODEL_NOT_READY' })).toBe(0);
    expect(await t.metric('bidder_internal_errors_total')).toBe(0);
    expect(await t.metric('bidder_model_swaps_total', { result: 'ok' })).toBe(5);
  });
});
