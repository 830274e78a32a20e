import { describe, expect, it } from 'vitest';
import { createBatcher } from '../src/score/batcher.js';
import type { CtrModel } from '../src/types.js';

/** A failing model call drops its rows to no-bids and is reported once per burst, not once per batch. */
describe('batcher: a failing model call', () => {
  it('resolves its rows as dropped, and reports the first failure after each success', async () => {
    let fail = true;
    const model: CtrModel = {
      version: 'flaky',
      kind: 'lr',
      specHash: 'flaky',
      predict(_s, _d, rows) {
        if (fail) throw new Error('model broke');
        return new Float32Array(rows).fill(0.01);
      },
      dispose() {},
    };
    const errors: unknown[] = [];
    let dropped = 0;
    const batcher = createBatcher({
      maxBatchRows: 64,
      maxQueueDelayUs: 0,
      sparseFields: 1,
      denseDim: 1,
      model: () => model,
      clock: () => 0,
      onDrop: (rows) => (dropped += rows),
      onModelError: (err) => errors.push(err),
    });
    const score = () => batcher.score(new Int32Array(1), new Float32Array(1), 1, 1000);
    for (let i = 0; i < 3; i++) expect(await score()).toBeNull();
    expect(dropped).toBe(3);
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe('model broke');
    fail = false;
    expect(await score()).not.toBeNull();
    fail = true;
    expect(await score()).toBeNull();
    expect(errors).toHaveLength(2);
  });
});
