// The simulator's Rng lives in src/random/random.ts, the one seeded-randomness module; this path is kept for importers in flight.
export { createRng, keyedNormal, type Rng } from '../random/random.js';
