/**
 * Seeded randomness, one module for the whole tree: everything random that must replay from a seed
 * (the simulator, the pacer and the shader, the catalog generator, tests) draws from here.
 * - `createRng(seed)`: an `Rng` object (sfc32 seeded through splitmix32) with the simulator's draws.
 * - `mulberry32(seed)`: a bare uniform source `() => number`, the shape the pacer, the shader and
 *   the samplers below take (an `Rng`'s `next` is one too).
 * - `sfc32Source(a, b, c, d, warmUp)`: the sfc32 generator with its state given, for callers whose
 *   published outputs depend on their own seeding (the catalog generator).
 * Changing any of these changes every seeded figure and fixture: add, never alter.
 */

/** The simulator's seeded draws. Every random draw in a simulated day goes through one of these. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  int(n: number): number;
  normal(): number;
  /** Index drawn with probability proportional to the cumulative weights given. */
  pickCumulative(cumulative: Float64Array): number;
  bernoulli(p: number): boolean;
  /** Exponential with the given mean. */
  exponential(mean: number): number;
}

function splitmix32(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** sfc32 (Doty-Humphrey's small fast counting generator) from the state given, after `warmUp` draws: unsigned 32-bit outputs. */
function sfc32(a: number, b: number, c: number, d: number, warmUp: number): () => number {
  a |= 0;
  b |= 0;
  c |= 0;
  d |= 0;
  function u32(): number {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  }
  for (let i = 0; i < warmUp; i++) u32();
  return u32;
}

/** sfc32 from its state as a uniform source in [0, 1). */
export function sfc32Source(a: number, b: number, c: number, d: number, warmUp: number): () => number {
  const u32 = sfc32(a, b, c, d, warmUp);
  return () => u32() / 4294967296;
}

export function createRng(seed: number): Rng {
  const init = splitmix32(seed);
  const a = init();
  const b = init();
  const c = init();
  const d = init();
  const next = sfc32Source(a, b, c, d, 12);
  let spare = NaN;
  return {
    next,
    int: (n) => Math.floor(next() * n),
    normal() {
      if (!Number.isNaN(spare)) {
        const s = spare;
        spare = NaN;
        return s;
      }
      let u = next();
      while (u === 0) u = next();
      const v = next();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
    pickCumulative(cum) {
      const x = next() * cum[cum.length - 1];
      let lo = 0;
      let hi = cum.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cum[mid] > x) hi = mid;
        else lo = mid + 1;
      }
      return lo;
    },
    bernoulli: (p) => next() < p,
    exponential: (mean) => -mean * Math.log(1 - next()),
  };
}

/**
 * A standard normal fixed by (seed, key): hidden market effects keyed by name, so an effect does
 * not depend on the order in which catalogs or traffic mention it.
 */
export function keyedNormal(seed: number, key: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  const r = createRng(h >>> 0);
  return r.normal();
}

/** mulberry32: 32-bit state, fast, good enough for sampling posteriors (not for cryptography). */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal by Box-Muller (one of the pair; the other is dropped to keep the sampler stateless). */
export function sampleNormal(random: () => number): number {
  let u = random();
  while (u === 0) u = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** Gamma(shape, 1) by Marsaglia and Tsang (2000); shapes below 1 through the boost x * U^(1/shape). */
export function sampleGamma(random: () => number, shape: number): number {
  if (shape < 1) {
    let u = random();
    while (u === 0) u = random();
    return sampleGamma(random, shape + 1) * Math.pow(u, 1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = sampleNormal(random);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = random();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b). */
export function sampleBeta(random: () => number, a: number, b: number): number {
  const x = sampleGamma(random, a);
  const y = sampleGamma(random, b);
  return x + y === 0 ? a / (a + b) : x / (x + y);
}
