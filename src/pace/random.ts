// The pacer's samplers live in src/random/random.ts, the one seeded-randomness module; this path is kept for importers in flight.
export { mulberry32, sampleBeta, sampleGamma, sampleNormal } from '../random/random.js';
