/** Pacing stage: the Thompson-sampling pacer, first-price bid shading, and their seeded samplers. */
export { createThompsonPacer, type PacedCampaign, type PacingView, type ThompsonPacer, type ThompsonPacerOptions } from './pacer.js';
export { createShader, POOLED, type BidShader, type CompetitionModel, type ShaderOptions, type ShaderSnapshot } from './shade.js';
export { createValuePacer, type BidPacer, type ValuePacer, type ValuePacerOptions } from './value-pacer.js';
export type { ValuePacerSnapshot } from './value-snapshot.js';
export { PriceLandscape } from './landscape.js';
export { mulberry32, sampleBeta, sampleGamma, sampleNormal } from '../random/random.js';
