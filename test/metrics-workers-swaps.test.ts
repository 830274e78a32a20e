import { AggregatorRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../src/metrics/metrics.js';

/**
 * With `serve --workers N` every worker loads the model itself (at start, on models/CURRENT, on an
 * admin reload passed on to the others), and /metrics aggregates the workers' registries as
 * src/cli/workers.ts does. Summed, each swap counted N times: a fresh start of 2 workers exported
 * bidder_model_swaps_total{result="ok"} 2, and the "Model swaps" stat read 2 per swap (review obs).
 */
const worker = () => createMetrics({ exchanges: ['default'], campaigns: ['c1'], defaults: false, workers: 2 });

async function swaps(workers: Metrics[]): Promise<Record<string, number>> {
  const text = await AggregatorRegistry.aggregate((await Promise.all(workers.map((w) => w.registry.getMetricsAsJSON()))) as never).metrics();
  return Object.fromEntries([...text.matchAll(/^bidder_model_swaps_total\{result="(\w+)"\} (\S+)$/gm)].map((m) => [m[1], Number(m[2])]));
}

describe('model swaps across worker threads', () => {
  it('count a swap every worker made once', async () => {
    const ws = [worker(), worker()];
    for (const w of ws) w.modelSwap('ok');
    expect(await swaps(ws)).toEqual({ ok: 1, refused: 0 });
    for (const w of ws) w.modelSwap('ok');
    expect(await swaps(ws)).toEqual({ ok: 2, refused: 0 });
    // A bad models/CURRENT: every worker refuses it.
    for (const w of ws) w.modelSwap('refused');
    expect(await swaps(ws)).toEqual({ ok: 2, refused: 1 });
  });

  it('show a refusal of one worker alone, the others having swapped', async () => {
    const ws = [worker(), worker()];
    for (const w of ws) w.modelSwap('ok');
    ws[0].modelSwap('ok');
    ws[1].modelSwap('refused');
    expect(await swaps(ws)).toEqual({ ok: 2, refused: 1 });
  });
});
