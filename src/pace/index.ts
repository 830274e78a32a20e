/** Pacing stage: the Thompson-sampling pacer, first-price bid shading, and their seeded samplers. */
export { createThompsonPacer, type PacedCampaign, type PacingView, type ThompsonPacer, type ThompsonPacerOptions } from './pacer.js';
export { createShader, POOLED, type BidShader, type CompetitionModel, type ShaderOptions } from './shade.js';
export { mulberry32, sampleBeta, sampleGamma, sampleNormal } from './random.js';
