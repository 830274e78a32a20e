import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { pacerSeed } from '../src/bidder.js';
import { mulberry32 } from '../src/pace/index.js';

/**
 * With `seed` set, every worker of `serve --workers N` drew the pacer's Thompson samples from one
 * sequence: their exploration was the same, not N independent draws (review determ). Worker i > 0
 * now mixes its index in; worker 0 and a process without workers keep the seed's own sequence.
 */
describe("the pacer's random source", () => {
  const draws = (seed: number) => {
    const random = mulberry32(seed);
    return Array.from({ length: 8 }, () => random());
  };
  // The seed's sequence as a lone process drew it before workers mixed their index in.
  const alone = Number.parseInt(createHmac('sha256', 'seed').update('1').digest('hex').slice(0, 8), 16);

  it("is the seed's own for a lone process and worker 0, as before", () => {
    expect(pacerSeed('1', undefined, 0)).toBe(alone);
    expect(pacerSeed('1', 0, 0)).toBe(alone);
  });

  it('differs between the workers of one process, for a seed and for the clock', () => {
    const seeded = [0, 1, 2, 3].map((i) => draws(pacerSeed('1', i, 0)));
    const clocked = [0, 1, 2, 3].map((i) => draws(pacerSeed('', i, 1_780_000_000_000)));
    for (const runs of [seeded, clocked]) {
      for (let i = 0; i < runs.length; i++) for (let j = i + 1; j < runs.length; j++) expect(runs[i], `workers ${i} and ${j}`).not.toEqual(runs[j]);
    }
    // Repeatable: the same seed and worker draw the same again.
    expect(draws(pacerSeed('1', 2, 0))).toEqual(seeded[2]);
  });

  it('without a seed is the clock, as before, in a lone process', () => {
    expect(pacerSeed('', undefined, 1_780_000_000_123)).toBe(1_780_000_000_123 >>> 0);
  });
});
