import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_MIX } from '../loadtest/mix.js';
import { sendPaced } from '../loadtest/paced.js';
import { runLoad } from '../loadtest/run.js';

/**
 * A slow stand-in bidder on a thread of its own: it answers one request every 5 ms, in arrival
 * order (200 req/s at most), 204; /metrics is empty.
 */
const SLOW = `
const { createServer } = require('node:http');
const { parentPort } = require('node:worker_threads');
let busyUntil = 0;
const server = createServer((req, res) => {
  if (req.url === '/metrics') return void res.end('');
  req.resume();
  req.on('end', () => {
    const at = Math.max(performance.now(), busyUntil) + 5;
    busyUntil = at;
    setTimeout(() => { res.statusCode = 204; res.end(); }, at - performance.now());
  });
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }));
`;

async function slowServer() {
  const worker = new Worker(SLOW, { eval: true });
  const [{ port }] = (await once(worker, 'message')) as [{ port: number }];
  return { origin: `http://127.0.0.1:${port}`, worker };
}

describe('load test fixed-rate mode past saturation', () => {
  let worker: Worker | null = null;
  afterEach(async () => {
    await worker?.terminate();
    worker = null;
  });

  it('counts the requests still queued at the end of a step, at the wait they had, instead of dropping them', async () => {
    // Twice the server's capacity for 2 s: 800 requests due, about half answered. The rest waited
    // longest of all; dropped, they were missing from the latencies and from "past tmax".
    const server = await slowServer();
    worker = server.worker;
    const [step] = await runLoad(
      { origin: server.origin, pid: null, logProblems: [], close: async () => {} },
      {
        durationS: 2,
        rate: 400,
        steps: 1,
        connections: 16,
        warmupS: 0,
        seed: 1,
        mix: DEFAULT_MIX,
        notices: { winShare: 0, billingShare: 0, clickShare: 0, lossShare: 0 },
        progress: false,
      },
    );
    expect(step.requests).toBeLessThan(600);
    expect(step.unsent).toBeGreaterThan(200);
    // Every request due is in the figures: answered or counted unsent.
    expect(step.requests + step.unsent).toBe(800);
    // Most of the unsent had waited past their tmax (200 ms for most) by the step's end: "past
    // tmax" now holds more than the answers alone could.
    expect(step.pastTmax).toBeGreaterThan(step.requests);
    expect(step.latencyMs.max).toBeGreaterThan(800);
  });

  it('hands each unsent request its wait from its due time to the last answer', async () => {
    const server = await slowServer();
    worker = server.worker;
    const waits: number[] = [];
    let answered = 0;
    const t0 = performance.now();
    const r = await sendPaced({
      origin: server.origin,
      ratePerS: 400,
      durationS: 1,
      connections: 8,
      next: () => ({ path: '/', body: '{}' }),
      onAnswer: () => answered++,
      onUnsent: (_req, waitedMs) => waits.push(waitedMs),
    });
    const end = performance.now() - t0;
    expect(r.sent).toBe(answered);
    expect(r.unsent).toBe(waits.length);
    expect(r.sent + r.unsent).toBe(400);
    expect(r.unsent).toBeGreaterThan(100);
    // The oldest unsent one was due about when the answered ones stopped keeping up, half-way in;
    // the newest just before the end. Waits run from the end of the step back to each due time.
    for (const w of waits) {
      expect(w).toBeGreaterThanOrEqual(0);
      expect(w).toBeLessThanOrEqual(end);
    }
    expect(Math.max(...waits)).toBeGreaterThan(300);
    expect(Math.min(...waits)).toBeLessThan(100);
  });
});
