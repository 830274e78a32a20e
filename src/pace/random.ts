/**
 * Seeded randomness for the pacer and the shader: a uniform source is injected everywhere
 * (`() => number` in [0, 1)), so tests and the simulator replay exactly from a seed. The samplers
 * take the source as an argument and allocate nothing.
 */

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
