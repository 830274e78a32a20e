/**
 * The simulated exchange's per-auction draws (notice faults and delays, min-to-win, click and
 * conversion delays) as a hash of the seed and what they belong to, not reads from one stream:
 * read from a stream, each strategy drew them in its own order, so the same auction's notices
 * were lost, late or duplicated differently for each strategy and their comparison mixed luck in
 * the faults with the strategies' difference. Keyed, every strategy that wins an auction meets
 * the same faults there, and the same seed gives the same draws.
 */

/** What a draw is for: each has its own key so that no two draws of an auction coincide. */
export const Draw = { Duplicate: 1, Lost: 2, DelayA: 3, DelayB: 4, Late: 5, LateBy: 6, MinToWin: 7, ClickDelay: 8, ConversionDelay: 9 } as const;
export type Draw = (typeof Draw)[keyof typeof Draw];

/** Notice kinds as keys (the order is only a numbering). */
export const NOTICE_KEY = { win: 1, billing: 2, loss: 3, click: 4, conversion: 5 } as const;

/** murmur3's 32-bit finaliser: every input bit reaches every output bit. */
function fmix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Uniform in [0, 1) for (seed, day, auction, notice kind, copy, draw): the auction's place in its
 * day names its request and imp, the same for every strategy run on that day.
 */
export function keyedUniform(seed: number, day: number, auction: number, kind: number, copy: number, draw: Draw): number {
  let h = fmix(seed ^ 0x6e0c1ce5);
  for (const x of [day, auction, kind, copy, draw]) h = fmix((h ^ Math.imul(x >>> 0, 0x9e3779b1)) + 0x7f4a7c15);
  // 53 bits from two words, so that no draw is exactly 1 and small probabilities are resolved.
  const lo = fmix(h ^ 0x5bd1e995);
  return (h * 2 ** 21 + (lo >>> 11)) / 2 ** 53;
}

/** Draws for one auction of one day. */
export function auctionDraws(seed: number, day: number, auction: number) {
  const u = (kind: number, copy: number, draw: Draw) => keyedUniform(seed, day, auction, kind, copy, draw);
  return {
    uniform: u,
    /** Standard normal (Box-Muller on two keyed uniforms). */
    normal(kind: number, copy: number): number {
      const a = 1 - u(kind, copy, Draw.DelayA);
      return Math.sqrt(-2 * Math.log(a)) * Math.cos(2 * Math.PI * u(kind, copy, Draw.DelayB));
    },
    /** Exponential with the given mean. */
    exponential(mean: number, draw: Draw): number {
      return -mean * Math.log(1 - u(0, 0, draw));
    },
  };
}
export type AuctionDraws = ReturnType<typeof auctionDraws>;
