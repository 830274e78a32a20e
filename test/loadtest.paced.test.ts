import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_MIX } from '../loadtest/mix.js';
import { runLoad, type LoadOptions } from '../loadtest/run.js';

/**
 * A stand-in bidder on a thread of its own (so the harness's work does not delay its answers, nor
 * its answers the harness): answers every bid request 204 at once and records when each arrived;
 * /metrics is empty. `stall` holds every answer due inside [first arrival + atMs, + ms) until that
 * window ends, as a bidder stopped (SIGSTOP, a long GC) for that long would.
 */
const STUB = `
const { createServer } = require('node:http');
const { parentPort, workerData: stall } = require('node:worker_threads');
const arrivals = [];
const server = createServer((req, res) => {
  if (req.url === '/metrics') return void res.end('');
  req.resume();
  req.on('end', () => {
    const now = performance.now();
    arrivals.push(now);
    const from = arrivals[0] + (stall ? stall.atMs : 0);
    const to = from + (stall ? stall.ms : 0);
    const answer = () => { res.statusCode = 204; res.end(); };
    if (now >= from && now < to) setTimeout(answer, to - now);
    else answer();
  });
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }));
parentPort.on('message', () => parentPort.postMessage({ arrivals: arrivals.map((t) => t - arrivals[0]) }));
`;

async function stubBidder(stall?: { atMs: number; ms: number }) {
  const worker = new Worker(STUB, { eval: true, workerData: stall ?? null });
  const [{ port }] = (await once(worker, 'message')) as [{ port: number }];
  return {
    target: { origin: `http://127.0.0.1:${port}`, pid: null, logProblems: [], close: async () => {} },
    /** Arrival times in ms from the first. */
    async arrivals(): Promise<number[]> {
      worker.postMessage('arrivals');
      return ((await once(worker, 'message')) as [{ arrivals: number[] }])[0].arrivals;
    },
    worker,
  };
}

const options = (rate: number, durationS: number): LoadOptions => ({
  durationS,
  rate,
  steps: 1,
  connections: 16,
  warmupS: 0,
  seed: 1,
  mix: DEFAULT_MIX,
  notices: { winShare: 0, billingShare: 0, clickShare: 0, lossShare: 0 },
  progress: false,
});

describe('load test fixed-rate mode', () => {
  let worker: Worker | null = null;
  afterEach(async () => {
    await worker?.terminate();
    worker = null;
  });

  it('spreads the requests of each second evenly instead of sending them in one burst', async () => {
    const stub = await stubBidder();
    worker = stub.worker;
    const [step] = await runLoad(stub.target, options(200, 3));
    // Arrivals per 100 ms window, from 0.5 s in (a slow start is caught up in the first windows) to
    // the last full window. 20 is each window's share of 200 req/s.
    const arrivals = await stub.arrivals();
    const counts = new Array<number>(Math.floor(arrivals.at(-1)! / 100)).fill(0);
    for (const t of arrivals) {
      const w = Math.floor(t / 100);
      if (w < counts.length) counts[w]++;
    }
    const windows = counts.slice(5);
    expect(windows.length).toBeGreaterThanOrEqual(15);
    // A burst put a second's 200 requests into one or two windows and left the rest empty. A
    // stall of this process (a loaded test machine) sends what fell due meanwhile together, so a
    // few windows may hold more than their share, but not most, and none half a second's.
    expect(windows.filter((n) => n >= 10 && n <= 30).length).toBeGreaterThanOrEqual(0.75 * windows.length);
    expect(Math.max(...windows)).toBeLessThan(100);
    expect(step.requests).toBeGreaterThan(500);
    expect(step.sentPerSec).toBeGreaterThan(160);
    expect(step.sentPerSec).toBeLessThan(240);
  });

  it('counts latency from the scheduled send, so a 250 ms server stall shows in the max', async () => {
    // 1.3 s in: a sender bursting at each second's start has its second's requests answered by then
    // and none in flight; an even one has one due every 5 ms.
    const stub = await stubBidder({ atMs: 1300, ms: 250 });
    worker = stub.worker;
    const [step] = await runLoad(stub.target, options(200, 3));
    expect(step.latencyMs.max).toBeGreaterThanOrEqual(200);
    expect(step.latencyMs.max).toBeLessThan(1000);
    // Requests asked for during the stall waited for a connection; they still count, from when they were due.
    expect(step.pastTmax).toBeGreaterThan(0);
    expect(step.latencyMs.p50).toBeLessThan(50);
  });
});
