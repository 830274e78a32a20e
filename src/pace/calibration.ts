import { sampleGamma } from './random.js';

class CreativeStats {
  imps = 0;
  clicks = 0;
  conversions = 0;
  meanPctr = 0;
  meanPcvr = 0;
  seenPctr = 0;
  seenPcvr = 0;
}

/**
 * Thompson sampling of each creative's CTR (and CVR) calibration: the model's probability times a
 * draw of observed events against those the model expected on the same trials, a Gamma-Poisson
 * posterior with prior mean 1 worth `priorEvents` events. Few trials: a wide draw (the creative
 * gets explored); many: the model, corrected by what was seen. Shared by every pacer.
 */
export function createCalibration(random: () => number, priorEvents = 3) {
  const creatives = new Map<string, CreativeStats>();
  function creative(id: string): CreativeStats {
    let s = creatives.get(id);
    if (s === undefined) {
      s = new CreativeStats();
      creatives.set(id, s);
    }
    return s;
  }
  function calibrated(modelP: number, observed: number, expected: number): number {
    return Math.min(1, (modelP * sampleGamma(random, priorEvents + observed)) / (priorEvents + expected));
  }
  return {
    explorePctr(creativeId: string, modelPctr: number): number {
      const s = creative(creativeId);
      s.seenPctr++;
      s.meanPctr += (modelPctr - s.meanPctr) / Math.min(s.seenPctr, 10_000);
      return calibrated(modelPctr, s.clicks, s.imps * s.meanPctr);
    },
    explorePcvr(creativeId: string, modelPcvr: number): number {
      const s = creative(creativeId);
      s.seenPcvr++;
      s.meanPcvr += (modelPcvr - s.meanPcvr) / Math.min(s.seenPcvr, 10_000);
      return calibrated(modelPcvr, s.conversions, s.clicks * s.meanPcvr);
    },
    onImpression(creativeId: string): void {
      const s = creatives.get(creativeId);
      if (s !== undefined) s.imps++;
    },
    onClick(creativeId: string): void {
      const s = creatives.get(creativeId);
      if (s !== undefined) s.clicks++;
    },
    onConversion(creativeId: string): void {
      const s = creatives.get(creativeId);
      if (s !== undefined) s.conversions++;
    },
  };
}

export type Calibration = ReturnType<typeof createCalibration>;
