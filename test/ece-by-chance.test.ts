import { describe, expect, it } from 'vitest';
import { ece } from '../src/model/metrics.js';
import { createRng } from '../src/random/random.js';
import { eceByChance } from '../src/model/train.js';

describe('eceByChance', () => {
  const preds = (n: number) => {
    const rng = createRng(7);
    return Float32Array.from({ length: n }, () => 0.005 + 0.05 * rng.next());
  };

  it('is the ECE a calibrated model exceeds by chance about one time in twenty, shrinking with the rows', () => {
    const p = preds(3_700);
    const bound = eceByChance(p, createRng(1));
    const rng = createRng(2);
    let over = 0;
    for (let t = 0; t < 200; t++) {
      const y = Float32Array.from(p, (x) => (rng.bernoulli(x) ? 1 : 0));
      if (ece(p, y) > bound) over++;
    }
    expect(over).toBeGreaterThan(2);
    expect(over).toBeLessThan(25);
    expect(bound).toBeGreaterThan(0.008);
    expect(eceByChance(preds(370_000), createRng(1))).toBeLessThan(bound / 5);
  });

  it('is the same for the same seed', () => {
    const p = preds(1_000);
    expect(eceByChance(p, createRng(3))).toBe(eceByChance(p, createRng(3)));
  });
});
