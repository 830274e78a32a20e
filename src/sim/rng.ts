/**
 * Seeded random source for the simulator (sfc32, seeded through splitmix32). Every random draw in a
 * simulated day goes through one of these, so a seed reproduces the day exactly.
 */
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

export function createRng(seed: number): Rng {
  const init = splitmix32(seed);
  let a = init();
  let b = init();
  let c = init();
  let d = init();
  function u32(): number {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  }
  for (let i = 0; i < 12; i++) u32();
  const next = () => u32() / 4294967296;
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
