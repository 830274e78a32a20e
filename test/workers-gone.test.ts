import { EventEmitter } from 'node:events';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { metricSum } from '../src/harness/prometheus.js';

/**
 * The main thread of `serve --workers` (src/cli/workers.ts) when a worker fails part-way through a
 * scrape, a fan-out or while it holds the admin lock: a fake Worker stands in for
 * node:worker_threads, so the main thread's side is driven message by message (review r4,
 * metrics-double-count.mjs and pause-during-failure.mjs reproduce the first two on the real CLI).
 */
type Sent = { type: string; id?: number; text?: string; results?: Array<{ ok: boolean }> };
const made: FakeWorker[] = [];
class FakeWorker extends EventEmitter {
  sent: Sent[] = [];
  constructor() {
    super();
    made.push(this);
    setImmediate(() => this.emit('message', { type: 'listening', port: 1234, graceMs: 1000 }));
  }
  postMessage(m: Sent) {
    this.sent.push(m);
  }
  terminate() {}
  last(type: string): Sent | undefined {
    return this.sent.filter((m) => m.type === type).at(-1);
  }
}
vi.mock('node:worker_threads', () => ({ Worker: FakeWorker }));

const tick = () => new Promise((r) => setTimeout(r, 10));
const pause = { kind: 'pause', campaignId: 'acme-shoes', paused: true };
const requests = (n: number) => [{ name: 'bidder_requests_total', help: 'requests', type: 'counter', aggregator: 'sum', values: [{ value: n, labels: { outcome: 'bid' } }] }];

async function start(n: number): Promise<FakeWorker[]> {
  const { runWorkers } = await import('../src/cli/workers.js');
  await runWorkers(n, '/nonexistent', { settings: { modelsDir: '/nonexistent/models' } } as never, { port: 1234, noticeSecret: 'x' }, () => {});
  return made.slice(-n);
}
/** `from` asks for a scrape; returns the metrics request each worker got. */
async function scrape(from: FakeWorker, all: FakeWorker[], id: number): Promise<Array<number | undefined>> {
  from.emit('message', { type: 'collect', id });
  await tick();
  return all.map((w) => w.last('metrics')?.id);
}

describe('serve --workers: a worker that fails', () => {
  beforeEach(() => {
    made.length = 0;
  });

  it('during a scrape, after its answer was taken, is counted once: the sum does not rise then fall', async () => {
    const [a, b] = await start(2);
    const answer = async (w: FakeWorker, id: number | undefined, n: number) => {
      w.emit('message', { type: 'metrics', id, json: requests(n) });
      await tick();
    };
    let [ia, ib] = await scrape(a, [a, b], 1);
    await answer(b, ib, 11);
    await answer(a, ia, 9);
    expect(metricSum(a.last('collected')!.text!, 'bidder_requests_total')).toBe(20);

    // Worker 1 answers this scrape, then fails while worker 0's answer is still to come.
    [ia, ib] = await scrape(a, [a, b], 2);
    await answer(b, ib, 11);
    b.emit('message', { type: 'failing', error: 'Error: test' });
    await answer(a, ia, 9);
    // Before: 31, worker 1's 11 in the live answers and in the departed ones both.
    expect(metricSum(a.last('collected')!.text!, 'bidder_requests_total')).toBe(20);
    b.emit('exit', 1);

    [ia] = await scrape(a, [a], 3);
    await answer(a, ia, 10);
    expect(metricSum(a.last('collected')!.text!, 'bidder_requests_total')).toBe(21);
  });

  it('before answering a fan-out has its part counted as applied: the pause is not undone on the others', async () => {
    const [a, b] = await start(2);
    a.emit('message', { type: 'fanout', id: 5, action: pause });
    await tick();
    expect(b.last('apply')).toBeDefined();
    b.emit('message', { type: 'failing', error: 'Error: test' });
    await tick();
    // Before: [{ ok: false }], and the bidder put the pause back on worker 0 (409, nothing paused).
    expect(a.last('fanned')!.results).toEqual([{ ok: true }]);
    b.emit('exit', 1);
  });

  it('keeps every other worker at its place in a fan-out\'s results, so an undo\'s answers are read for the workers that took the action', async () => {
    const [a, b, c] = await start(3);
    a.emit('message', { type: 'fanout', id: 5, action: pause });
    await tick();
    b.emit('message', { type: 'applied', id: b.last('apply')!.id, result: { ok: false, problems: ['b refuses'] } });
    c.emit('message', { type: 'applied', id: c.last('apply')!.id, result: { ok: true } });
    await tick();
    expect(a.last('fanned')!.results!.map((r) => r.ok)).toEqual([false, true]);

    // Worker 1 fails before the undo: worker 2, which took the pause, is still the second answer.
    b.emit('message', { type: 'failing', error: 'Error: test' });
    a.emit('message', { type: 'fanout', id: 6, action: { ...pause, paused: false } });
    await tick();
    c.emit('message', { type: 'applied', id: c.last('apply')!.id, result: { ok: false, problems: ['c cannot put it back'] } });
    await tick();
    // Before: [c's refusal] alone, read as worker 1's; worker 2's (back[1]) missing read as put back.
    expect(a.last('fanned')!.results).toEqual([{ ok: true }, { ok: false, problems: ['c cannot put it back'] }]);
    b.emit('exit', 1);
  });

  it('holding the admin lock keeps it until it unlocks or exits, so the next action does not start while its fan-out is applied', async () => {
    const [a, b, c] = await start(3);
    a.emit('message', { type: 'lock', id: 1 });
    await tick();
    expect(a.last('locked')).toBeDefined();
    a.emit('message', { type: 'fanout', id: 2, action: pause });
    c.emit('message', { type: 'lock', id: 3 });
    await tick();
    a.emit('message', { type: 'failing', error: 'Error: test' });
    await tick();
    // Before: worker 2 was granted the lock here, its action applied on worker 1 alongside worker 0's.
    expect(c.last('locked')).toBeUndefined();
    for (const w of [b, c]) w.emit('message', { type: 'applied', id: w.last('apply')!.id, result: { ok: true } });
    await tick();
    expect(a.last('fanned')!.results).toEqual([{ ok: true }, { ok: true }]);
    a.emit('message', { type: 'unlock' });
    await tick();
    expect(c.last('locked')).toBeDefined();

    // One that fails while it waits for the lock is granted it in its turn (its drain waits for
    // that action), and one that exits holding it releases it.
    b.emit('message', { type: 'lock', id: 4 });
    await tick();
    b.emit('message', { type: 'failing', error: 'Error: test' });
    c.emit('message', { type: 'unlock' });
    await tick();
    expect(b.last('locked')).toBeDefined();
    c.emit('message', { type: 'lock', id: 5 });
    await tick();
    expect(c.sent.filter((m) => m.type === 'locked')).toHaveLength(1);
    b.emit('exit', 1);
    await tick();
    expect(c.sent.filter((m) => m.type === 'locked')).toHaveLength(2);
    a.emit('exit', 1);
  });
});
