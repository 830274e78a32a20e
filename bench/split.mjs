#!/usr/bin/env node
// node bench/split.mjs (after npm run build): raw inference of the shipped model, CPU µs per row,
// with the first layer as one matrix product (whole) and in parts (context per imp, ad per
// creative, pair per row), on rows as the bid path writes them: batches of 192 rows made of imps of
// K candidates (K = 10, 64), creatives drawn from a pool of 200. Alternating, 5 rounds each.
import { resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
const { selectBackend } = await import(resolve('dist/model/backend.js'));
const { readModelVersion, resolveModelDir } = await import(resolve('dist/model/store.js'));
const { compileArtifacts } = await import(resolve('dist/model/compile.js'));
const { createFeatureBuilder, FEATURE_SPEC, rowSplit } = await import(resolve('dist/features/features.js'));
await selectBackend('wasm');
const art = readModelVersion(resolveModelDir(resolve('models')), FEATURE_SPEC);
const whole = compileArtifacts(art.modelTopology, art.weightSpecs, art.weightData);
const parts = compileArtifacts(art.modelTopology, art.weightSpecs, art.weightData, rowSplit(FEATURE_SPEC));
const fb = createFeatureBuilder(FEATURE_SPEC);
const pool = Array.from({ length: 200 }, (_, i) => fb.prepareCreative({ id: `cr${i}`, campaignId: `c${i}`, format: 'banner', w: 300, h: 250, attr: [], title: `offer ${i}`, keywords: ['k' + (i % 9)], imageEmbedding: Array.from({ length: 8 }, (_, k) => Math.sin(i + k)), landingUrl: 'https://x/' }, { cat: ['IAB' + ((i % 20) + 1)] }));
function batch(rows, perImp, seed) {
  const { sparse, dense } = fb.allocate(rows);
  for (let r = 0, imp = 0; r < rows; imp++) {
    const n = Math.min(perImp, rows - r);
    const ctx = { requestId: 'r', impId: '1', exchange: 'default', isApp: false, siteOrAppId: `s${imp + seed}`, publisherId: 'p', domain: `d${imp}.example`, categories: ['IAB1'], deviceType: 2, os: 'ios', country: 'usa', region: 'ca', hour: 12, format: 'banner', w: 300, h: 250, dealId: '', userKey: `u${imp + seed}`, segments: ['seg-1'], userDataAllowed: true };
    const profile = { seenCategories: ['IAB1', 'IAB3'], clickedCategories: [], campaignImpressions: {} };
    fb.writeRows(ctx, Array.from({ length: n }, (_, j) => pool[(imp * 13 + j * 7 + seed) % pool.length]), profile, sparse, dense, r);
    r += n;
  }
  return { sparse, dense };
}
function cost(model, batches, rows) {
  const cpu0 = process.cpuUsage();
  let n = 0;
  const until = performance.now() + 1500;
  while (performance.now() < until) for (const b of batches) (tf.tidy(() => model.run([b.sparse, b.dense], rows).dataSync()), n++);
  const c = process.cpuUsage(cpu0);
  return (c.user + c.system) / (n * rows);
}
for (const perImp of [10, 64]) {
  const rows = 192;
  const batches = Array.from({ length: 20 }, (_, s) => batch(rows, perImp, s));
  for (let i = 0; i < 20; i++) (cost(whole, batches.slice(0, 1), rows), cost(parts, batches.slice(0, 1), rows));
  const w = [];
  const p = [];
  for (let round = 0; round < 5; round++) (w.push(cost(whole, batches, rows)), p.push(cost(parts, batches, rows)));
  const med = (xs) => xs.sort((a, b) => a - b)[2].toFixed(2);
  console.log(`imps of ${perImp} candidates, batch ${rows}: whole ${med(w)} µs/row (${w.map((x) => x.toFixed(2)).join(' ')}), parts ${med(p)} µs/row (${p.map((x) => x.toFixed(2)).join(' ')})`);
}
