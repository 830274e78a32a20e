import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../src/model/backend.js';
import { buildDcn, buildLr } from '../src/model/architectures.js';
import { compileArtifacts, type RowSplit } from '../src/model/compile.js';
import { createFeatureBuilder, FEATURE_SPEC, rowSplit } from '../src/features/features.js';
import { readModelVersion, resolveModelDir, saveModelVersion, type ModelMeta } from '../src/model/store.js';
import type { Creative, ImpContext, UserProfile } from '../src/types.js';

/**
 * The first linear layer computed in parts (context once per imp, ad once per creative, the
 * user × creative columns per row; src/model/compile.ts) scores what the whole matrix product
 * scores, to 1e-6, on rows as the bid path writes them.
 */
const fb = createFeatureBuilder(FEATURE_SPEC);
const F = FEATURE_SPEC.sparseFields;
const D = FEATURE_SPEC.denseDim;

function creative(i: number): Creative {
  return {
    id: `cr-${i}`,
    campaignId: `c-${i % 7}`,
    format: 'banner',
    w: 300,
    h: 250,
    attr: [],
    title: `offer ${i} shoes`,
    keywords: [`k${i % 5}`, 'sale'],
    imageEmbedding: Array.from({ length: 8 }, (_, k) => Math.sin(i * 8 + k)),
    landingUrl: 'https://x.example/',
  };
}
const prepared = Array.from({ length: 30 }, (_, i) => fb.prepareCreative(creative(i), { cat: [`IAB${(i % 20) + 1}-1`] }));

function ctx(i: number, userDataAllowed: boolean): ImpContext {
  return {
    requestId: `r${i}`, impId: '1', exchange: 'default', isApp: i % 3 === 0, siteOrAppId: `s${i % 11}`, publisherId: `p${i % 5}`,
    domain: `d${i % 13}.example`, categories: [`IAB${(i % 9) + 1}`], deviceType: (i % 4) + 1, os: ['ios', 'android'][i % 2], country: 'usa',
    region: 'ca', hour: i % 24, format: 'banner', w: 300, h: 250, dealId: i % 4 === 0 ? 'deal-1' : '', userKey: `u${i}`,
    segments: userDataAllowed ? [`seg-${i % 6}`] : [], userDataAllowed,
  };
}
const profile = (i: number): UserProfile | undefined =>
  i % 5 === 0 ? undefined : { seenCategories: ['IAB1', `IAB${i % 20}`], clickedCategories: i % 2 ? ['IAB3'] : [], campaignImpressions: { [`c-${i % 7}`]: i % 4 } };

/** Imps of 1..12 candidates each, creatives repeating across imps, as concurrent bid requests batch them. */
function rows(imps: number, seed: number): { sparse: Int32Array; dense: Float32Array; n: number } {
  const plan: Array<{ i: number; crs: number[] }> = [];
  let n = 0;
  for (let i = 0; i < imps; i++) {
    const k = 1 + ((i * 7 + seed) % 12);
    plan.push({ i: i + seed * 100, crs: Array.from({ length: k }, (_, j) => (i * 3 + j * 5 + seed) % prepared.length) });
    n += k;
  }
  const { sparse, dense } = fb.allocate(n);
  let row = 0;
  for (const p of plan) {
    fb.writeRows(ctx(p.i, p.i % 4 !== 1), p.crs.map((c) => prepared[c]), profile(p.i), sparse, dense, row);
    row += p.crs.length;
  }
  return { sparse, dense, n };
}

const meta = (version: string, kind: 'lr' | 'dcn'): ModelMeta => ({ version, kind, featureSpecHash: FEATURE_SPEC.hash, trainedAt: '2026-01-01T00:00:00.000Z', data: {}, metrics: {} });

function compare(art: ReturnType<typeof readModelVersion>, split: RowSplit) {
  const whole = compileArtifacts(art.modelTopology, art.weightSpecs, art.weightData)!;
  const parts = compileArtifacts(art.modelTopology, art.weightSpecs, art.weightData, split)!;
  let maxDiff = 0;
  let distinct = new Set<string>();
  // Several batches through the same model: the per-creative cache carries over between them.
  for (let b = 0; b < 5; b++) {
    const { sparse, dense, n } = rows(20 + b * 7, b);
    const want = tf.tidy(() => whole.run([sparse, dense], n).dataSync());
    const got = tf.tidy(() => parts.run([sparse, dense], n).dataSync());
    expect(got.length).toBe(n);
    for (let i = 0; i < n; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
    distinct = new Set([...distinct, ...Array.from(got).map((x) => x.toFixed(5))]);
  }
  whole.dispose();
  parts.dispose();
  return { maxDiff, distinct: distinct.size };
}

describe('first layer in parts (context, ad, pair)', () => {
  let dir: string;
  beforeAll(async () => {
    await selectBackend('wasm');
    dir = mkdtempSync(join(tmpdir(), 'split-'));
    return () => rmSync(dir, { recursive: true, force: true });
  });

  it('the shipped default model: equal to 1e-6', () => {
    const r = compare(readModelVersion(resolveModelDir('models'), FEATURE_SPEC), rowSplit(FEATURE_SPEC));
    expect(r.maxDiff).toBeLessThanOrEqual(1e-6);
    expect(r.distinct).toBeGreaterThan(50);
  });

  for (const [kind, build] of [
    ['dcn', () => buildDcn(FEATURE_SPEC)],
    ['lr', () => buildLr(FEATURE_SPEC)],
  ] as const) {
    it(`${kind} with random weights: equal to 1e-6, also under a split that is wrong about the features`, async () => {
      const model = build();
      model.setWeights(model.getWeights().map((w, i) => tf.randomNormal(w.shape, 0, 0.3, 'float32', 300 + i)));
      await saveModelVersion(dir, model, meta(`${kind}-split`, kind));
      model.dispose();
      const art = readModelVersion(join(dir, `${kind}-split`), FEATURE_SPEC);
      const right = compare(art, rowSplit(FEATURE_SPEC));
      expect(right.maxDiff).toBeLessThanOrEqual(1e-6);
      expect(right.distinct).toBeGreaterThan(50);
      // Every column called context, or every column called ad: reuse is checked on the values, so still equal.
      const all = Array.from({ length: F }, (_, i) => i);
      const allDense = Array.from({ length: D }, (_, i) => i);
      expect(compare(art, { sparse: { ctx: all, ad: [] }, dense: { ctx: allDense, ad: [] } }).maxDiff).toBeLessThanOrEqual(1e-6);
      expect(compare(art, { sparse: { ctx: [], ad: all }, dense: { ctx: [], ad: allDense } }).maxDiff).toBeLessThanOrEqual(1e-6);
    });
  }
});
