import { describe, expect, it } from 'vitest';
import { createBatcher } from '../src/score/batcher.js';
import type { CtrModel } from '../src/types.js';

/** A model that runs `onPredict` (to move a fake clock or record the batch) and scores every row 0.01. */
function fakeModel(onPredict: (sparse: Int32Array, rows: number) => void): CtrModel {
  return {
    version: 'fake',
    kind: 'lr',
    specHash: 'fake',
    predict(sparse, _d, rows) {
      onPredict(sparse, rows);
      return new Float32Array(rows).fill(0.01);
    },
    dispose() {},
  };
}

/**
 * Admission control must not lock itself shut. The bid path refuses a request (OVERLOADED) when
 * `expectedDelayMs()` would overrun its deadline; that estimate is learnt from model calls, so
 * after one stalled call (GC, a cold model, a descheduled process) it must come back down even
 * though, refusing everything, the batcher sees no new call to learn from. Time is a fake clock.
 */
describe('batcher admission estimate after a stall', () => {
  function setup() {
    let now = 0;
    let stallMs = 0;
    const model = fakeModel(() => {
      now += stallMs || 0.5;
      stallMs = 0;
    });
    const batcher = createBatcher({ maxBatchRows: 64, maxQueueDelayUs: 0, sparseFields: 1, denseDim: 1, model: () => model, clock: () => now });
    const score = (deadlineMs: number) => batcher.score(new Int32Array(1), new Float32Array(1), 1, deadlineMs);
    return { batcher, score, advance: (ms: number) => (now += ms), stall: (ms: number) => (stallMs = ms), now: () => now };
  }

  it('a request with a 30 ms budget is admitted again within seconds of one 500 ms model call', async () => {
    const b = setup();
    for (let i = 0; i < 20; i++) await b.score(b.now() + 1000);
    expect(b.batcher.expectedDelayMs()).toBeLessThan(5);
    b.stall(500);
    await b.score(b.now() + 10_000);
    // Ten seconds of traffic with 30 ms budgets, each refused as the bid path would refuse it.
    let admitted = 0;
    for (let t = 0; t < 10_000; t += 10) {
      b.advance(10);
      if (b.batcher.expectedDelayMs() <= 30) {
        admitted++;
        await b.score(b.now() + 30);
      }
    }
    expect(admitted).toBeGreaterThan(0);
  });
});

describe('batcher order', () => {
  it('scores the earliest deadline first when the queue holds more than one batch, FIFO otherwise', async () => {
    const now = 0;
    const seen: number[][] = [];
    const model = fakeModel((sparse, rows) => seen.push(Array.from(sparse.subarray(0, rows))));
    const batcher = createBatcher({ maxBatchRows: 4, maxQueueDelayUs: 0, sparseFields: 1, denseDim: 1, model: () => model, clock: () => now });
    const score = (tag: number, deadlineMs: number) => batcher.score(Int32Array.of(tag), new Float32Array(1), 1, deadlineMs);
    // Six requests with long deadlines, then one whose deadline is short: it must not wait a batch.
    const long = [1, 2, 3, 4, 5, 6].map((tag) => score(tag, 1000));
    const short = score(99, 100);
    await Promise.all([...long, short]);
    expect(seen).toEqual([
      [99, 1, 2, 3],
      [4, 5, 6],
    ]);
    // Under one batch: arrival order.
    seen.length = 0;
    await Promise.all([score(7, 1000), score(8, 10)]);
    expect(seen).toEqual([[7, 8]]);
  });
});

describe('batcher admission estimate under a flood', () => {
  // Under a flood the loop spends a long poll preparing requests before the next flush runs, so a
  // request waits that poll out even when no batch is ahead of it. Counting only model calls
  // admitted requests that then missed their deadline in the queue.
  it('learns the wait from enqueue to batch, not only the model call', async () => {
    let now = 0;
    const model = fakeModel(() => (now += 0.5));
    const batcher = createBatcher({ maxBatchRows: 64, maxQueueDelayUs: 0, sparseFields: 1, denseDim: 1, model: () => model, clock: () => now });
    const score = () => batcher.score(new Int32Array(1), new Float32Array(1), 1, now + 1000);
    for (let i = 0; i < 10; i++) await score();
    expect(batcher.expectedDelayMs()).toBeLessThan(5);
    // Each request now waits out a 40 ms poll (the clock moves before the flush runs).
    for (let i = 0; i < 10; i++) {
      const p = score();
      now += 40;
      await p;
    }
    expect(batcher.expectedDelayMs()).toBeGreaterThan(30);
  });
});

describe('batcher admission after a stalled turn', () => {
  // One turn held for a second with a request queued teaches the estimate a one-second wait; it
  // must not keep refusing short budgets for the many seconds an average needs to forget it.
  it('admits a request with an 80 ms budget again within about a second of the stall', async () => {
    let now = 0;
    const batcher = createBatcher({ maxBatchRows: 64, maxQueueDelayUs: 0, sparseFields: 1, denseDim: 1, model: () => fakeModel(() => (now += 0.5)), clock: () => now });
    const score = (deadlineMs: number) => batcher.score(new Int32Array(1), new Float32Array(1), 1, deadlineMs);
    for (let i = 0; i < 10; i++) await score(now + 1000);
    const stalled = score(now + 10_000);
    now += 1000; // the loop is held a second before the flush runs
    await stalled;
    expect(batcher.expectedDelayMs()).toBeGreaterThan(80);
    // Requests every 10 ms with 80 ms budgets, refused as the bid path would refuse them.
    let firstAdmittedAfterMs = -1;
    const stallEnd = now;
    for (let t = 0; t < 5000 && firstAdmittedAfterMs < 0; t += 10) {
      now += 10;
      if (batcher.expectedDelayMs() <= 80) {
        firstAdmittedAfterMs = now - stallEnd;
        await score(now + 80);
      }
    }
    expect(firstAdmittedAfterMs).toBeGreaterThan(0);
    expect(firstAdmittedAfterMs).toBeLessThanOrEqual(1100);
    // And once admitted, the next ones are too: the learnt wait started over.
    expect(batcher.expectedDelayMs()).toBeLessThan(80);
  });
});
