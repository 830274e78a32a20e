import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { createPrivacy } from '../src/eligibility/privacy.js';
import { createFeatureBuilder } from '../src/features/features.js';
import { buildCatalogState } from '../src/live/build.js';
import { selectBackend } from '../src/model/backend.js';
import { loadLayersModel, loadModel, resolveModelDir } from '../src/model/store.js';
import { lrWeightsOf, type UnseenStats } from '../src/model/unseen.js';
import { predictRows, trainModel } from '../src/model/train.js';
import { createRng } from '../src/random/random.js';
import { simulatedRows } from '../src/sim/dataset.js';
import { createValidator } from '../src/validate/validate.js';
import type { CtrModel } from '../src/types.js';

/**
 * A review scored the real corpus with lr-v4: a field the simulator always sends and a real
 * request lacks (site.cat, device.os, geo, publisher, site id) is id 0, the 'absent' bucket all
 * fields share, whose weight was learnt from other fields' absence: acme's served pCTR was 1.54 ×
 * what it is with those fields scored as average, and a request without site.cat bid $19.44 where
 * an unseen category bid $15.10. Real audience segment ids, never seen in training, scored 0
 * where trained ones average −0.09 (crosses −0.19): 3 of them took acme's pCTR 0.031 → 0.089.
 * The version CURRENT names must score both as the average (src/model/unseen.ts).
 */
const builder = createFeatureBuilder();
const policies = loadPolicies('policies');
const clock = () => Date.parse('2026-06-01T15:00:00Z');
const { eligibility, prepared } = buildCatalogState(policies.campaigns, builder, {
  ratesPerUsd: policies.ratesPerUsd,
  privacy: createPrivacy({}),
  clock,
  userKey: (r) => (typeof r.user?.id === 'string' ? r.user.id : ''),
  isPaused: () => false,
  frequency: () => 0,
});
const validate = createValidator({ maxTmaxMs: 10_000, maxImps: 20 });
/** prebid-server's kargo banner fixture (test/fixtures/unseen/SOURCES.md): site id, cat, publisher, OS, device type, country and region. */
const REAL = readFileSync('test/fixtures/unseen/kargo-banner.json', 'utf8');
const rows = builder.allocate(1);
const logit = (p: number) => Math.log(p / (1 - p));

/** pCTR of each eligible creative of the request's first imp, as the bid path builds the rows. */
function score(model: CtrModel, mutate: (r: any) => void = () => {}): Map<string, number> {
  const req = JSON.parse(REAL);
  mutate(req);
  const plan = eligibility.plan(validate(req), 'default', 'USD');
  const out = new Map<string, number>();
  for (const el of plan.imps[0]?.eligible ?? []) {
    builder.writeRow(plan.imps[0].ctx, prepared.get(el.cand.creative.id)!, undefined, rows.sparse, rows.dense, 0);
    out.set(el.cand.creative.id, model.predict(rows.sparse, rows.dense, 1)[0]);
  }
  return out;
}

/** Each creative scored both ways, the largest gap in logits; at least one creative compared. */
function largestGap(a: Map<string, number>, b: Map<string, number>): number {
  const common = [...a.keys()].filter((c) => b.has(c));
  expect(common.length).toBeGreaterThan(0);
  return Math.max(...common.map((c) => Math.abs(logit(a.get(c)!) - logit(b.get(c)!))));
}

let current: CtrModel & { meta: { version: string } };
let v4: CtrModel;
let dcn: CtrModel;

beforeAll(async () => {
  await selectBackend('cpu');
  current = await loadModel(resolveModelDir('models'));
  v4 = await loadModel(resolveModelDir('models', 'lr-v4'));
  dcn = await loadModel(resolveModelDir('models', 'dcn-v2'));
}, 120_000);

/** Each field that training always had: the request without it, and with a value training never saw. */
const FIELDS: Array<[string, (r: any) => void, (r: any) => void]> = [
  ['site.cat', (r) => delete r.site.cat, (r) => (r.site.cat = ['IAB999'])],
  ['device.os', (r) => delete r.device.os, (r) => (r.device.os = 'kaios')],
  ['geo.region', (r) => delete r.device.geo.region, (r) => (r.device.geo.region = 'ZZ')],
  ['geo.country', (r) => delete r.device.geo.country, (r) => (r.device.geo.country = 'ZZZ')],
  ['site.publisher', (r) => delete r.site.publisher, (r) => (r.site.publisher.id = 'pub-unseen')],
  ['site.id', (r) => delete r.site.id, (r) => (r.site.id = 'site-unseen')],
];

describe('the served model on a real request', () => {
  it('scores a field training always had, missing, as a value it never saw (the average)', () => {
    const gaps: Record<string, number> = {};
    for (const [name, absent, unseen] of FIELDS) gaps[name] = largestGap(score(current, absent), score(current, unseen));
    const all = (r: any) => FIELDS.forEach(([, absent]) => absent(r));
    const allUnseen = (r: any) => FIELDS.forEach(([, , unseen]) => unseen(r));
    gaps.all = largestGap(score(current, all), score(current, allUnseen));
    // lr-v4: site.cat 0.32 above (pageCreative), the OS 0.11, all six 0.50.
    for (const [name, gap] of Object.entries(gaps)) expect(gap, `${current.meta.version}: ${name}`).toBeLessThan(0.005);
  });

  it('scores unseen audience segments, and a data provider id, as an average trained segment', () => {
    const withData = (ids: string[], provider: string) => (r: any) => (r.user.data = [{ id: provider, segment: ids.map((id) => ({ id })) }]);
    // Users of the simulator with 3 trained segments, their provider 'sim-dmp' after them as training had it.
    const trained = new Map<string, number[]>();
    for (let a = 1; a <= 30; a += 7) for (let b = 2; b <= 30; b += 9) for (let c = 3; c <= 30; c += 11) {
      if (a === b || b === c || a === c) continue;
      const seg = (x: number) => `seg-${String(x).padStart(2, '0')}`;
      for (const [crid, p] of score(current, withData([seg(a), seg(b), seg(c)], 'sim-dmp'))) trained.set(crid, [...(trained.get(crid) ?? []), logit(p)]);
    }
    const real = score(current, withData(['1234', '5678', '9012'], 'pubmatic'));
    expect(real.size).toBeGreaterThan(0);
    for (const [crid, p] of real) {
      const l = trained.get(crid)!;
      const mean = l.reduce((s, x) => s + x, 0) / l.length;
      // lr-v4: acme-300x250 1.2 above (0.0888 against 0.0277).
      expect(Math.abs(logit(p) - mean), crid).toBeLessThan(0.3);
    }
  });

  it('scores a junk value whose hash lands in a bucket another field trained as the average, not by that weight', () => {
    // Found by scoring 'junk-0'..'junk-2999' in each field with lr-v4 (acme-300x250): the highest,
    // 0.34–0.98 in logit above a value whose bucket nothing trained; about 1 % of random values
    // land over 0.1 above. lr-v5 before its seen sets covered these fields read the same weights.
    const JUNK: Array<[string, (r: any, v: string) => void, (r: any) => void, string[]]> = [
      ['site.id', (r, v) => (r.site.id = v), (r) => delete r.site.id, ['junk-2377', 'junk-686']],
      ['site.publisher.id', (r, v) => (r.site.publisher.id = v), (r) => delete r.site.publisher.id, ['junk-364', 'junk-359']],
      ['device.os', (r, v) => (r.device.os = v), (r) => delete r.device.os, ['junk-464', 'junk-481']],
      ['geo.region', (r, v) => (r.device.geo.region = v), (r) => delete r.device.geo.region, ['junk-1912', 'junk-1168']],
    ];
    const acme = (m: CtrModel, mutate: (r: any) => void) => logit(score(m, mutate).get('acme-300x250')!);
    for (const [name, set, absent, values] of JUNK) {
      // The field's mean, as a request lacking it scores; and lr-v4's score for a value whose bucket nothing trained.
      const average = acme(current, absent);
      const untrained = acme(v4, (r) => set(r, name === 'device.os' ? 'os-unseen' : `${name}-unseen`));
      for (const v of values) {
        expect(acme(v4, (r) => set(r, v)) - untrained, `lr-v4 ${name}=${v}`).toBeGreaterThan(0.3);
        expect(Math.abs(acme(current, (r) => set(r, v)) - average), `${current.meta.version} ${name}=${v}`).toBeLessThan(0.005);
      }
      expect(Math.abs(acme(current, (r) => set(r, `${name}-unseen`)) - average), `${name} untrained bucket`).toBeLessThan(0.005);
    }
  });

  it('dcn-v2 (served without the rule) scores a missing field no higher than a value it never saw', () => {
    // Measured on this request: within 0.02 in logit for the OS, geo, publisher and site id; a
    // missing category 0.12 below an unseen one, both above the trained categories' mean (dcn-v2
    // is not recentred: models/README.md).
    for (const [name, absent, unseen] of FIELDS) {
      const a = score(dcn, absent);
      const u = score(dcn, unseen);
      for (const [crid, p] of a) if (u.has(crid)) expect(logit(p) - logit(u.get(crid)!), `${name} ${crid}`).toBeLessThan(0.05);
    }
  });
});

describe('versions', () => {
  it('lr-v5 scores the training day\'s rows exactly as lr-v4, also through eval\'s LayersModel path', async () => {
    const day = simulatedRows({ seed: 1, worldSeed: 1, rows: 3000, campaigns: policies.campaigns });
    const v5 = await loadModel(resolveModelDir('models', 'lr-v5'));
    expect(Array.from(v5.predict(day.sparse, day.dense, day.rows))).toEqual(Array.from(v4.predict(day.sparse, day.dense, day.rows)));
    v5.dispose();
    // On a request lacking site.cat, eval's path scores as the bidder does.
    const req = JSON.parse(REAL);
    delete req.site.cat;
    const plan = eligibility.plan(validate(req), 'default', 'USD');
    const el = plan.imps[0].eligible[0];
    builder.writeRow(plan.imps[0].ctx, prepared.get(el.cand.creative.id)!, undefined, rows.sparse, rows.dense, 0);
    const layers5 = await loadLayersModel(resolveModelDir('models', 'lr-v5'));
    const layers4 = await loadLayersModel(resolveModelDir('models', 'lr-v4'));
    const served = (await loadModel(resolveModelDir('models', 'lr-v5'))).predict(rows.sparse, rows.dense, 1)[0];
    expect(predictRows(layers5.layers, builder.spec, rows.sparse, rows.dense, 1)[0]).toBeCloseTo(served, 6);
    // lr-v4, immutable, scores as it always did: the absent category's weight, not the average.
    expect(predictRows(layers4.layers, builder.spec, rows.sparse, rows.dense, 1)[0]).toBeCloseTo(v4.predict(rows.sparse, rows.dense, 1)[0], 6);
    expect(Math.abs(logit(v4.predict(rows.sparse, rows.dense, 1)[0]) - logit(served))).toBeGreaterThan(0.1);
    layers5.layers.dispose();
    layers4.layers.dispose();
  }, 120_000);

  it('refuses a version whose unseen statistics do not fit it, every problem named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'unseen-'));
    cpSync('models/lr-v5', join(dir, 'lr-v5'), { recursive: true });
    const metaPath = join(dir, 'lr-v5', 'meta.json');
    const meta = JSON.parse(readFileSync(metaPath, 'utf8'));
    meta.unseen.fields.nosuch = meta.unseen.fields.os;
    meta.unseen.fields.segment0 = { ...meta.unseen.fields.segment0, mean: 'x' };
    writeFileSync(metaPath, JSON.stringify(meta));
    const why = await loadModel(join(dir, 'lr-v5')).then(() => '', (err: Error) => err.message);
    expect(why).toMatch(/unseen\.fields\.segment0 must be/);
    expect(why).toMatch(/unseen names field nosuch, which the feature spec does not have/);
    await expect(loadLayersModel(join(dir, 'lr-v5'))).rejects.toThrow(/unseen names field nosuch/);
    // A DCN has no such rule to apply: refused, not served without it.
    cpSync('models/dcn-v2', join(dir, 'dcn-v2'), { recursive: true });
    const dcnMeta = JSON.parse(readFileSync(join(dir, 'dcn-v2', 'meta.json'), 'utf8'));
    writeFileSync(join(dir, 'dcn-v2', 'meta.json'), JSON.stringify({ ...dcnMeta, unseen: JSON.parse(readFileSync('models/lr-v5/meta.json', 'utf8')).unseen }));
    await expect(loadModel(join(dir, 'dcn-v2'))).rejects.toThrow(/unseen is a rule for a logistic regression/);
  }, 120_000);

  it('scores a creative training never saw as one whose bucket nothing trained, whatever its hash lands on', async () => {
    // Recentring moved the content block's mean with the creative field's: a new creative, weight
    // 0 and its content counted from zero, is the average one. The field's own mean (0.385) would
    // count the content's twice; a bucket another field trained would add its weight.
    // The training day's rows, as the test above has them: every id in them seen.
    const day = simulatedRows({ seed: 1, worldSeed: 1, rows: 3000, campaigns: policies.campaigns });
    const v5 = await loadModel(resolveModelDir('models', 'lr-v5'));
    const bin = readFileSync('models/lr-v5/weights.bin');
    const w = lrWeightsOf(JSON.parse(readFileSync('models/lr-v5/model.json', 'utf8')).weightsManifest[0].weights, bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength))!;
    const c = builder.spec.sparseFieldNames.indexOf('creative');
    const seen = new Set<number>((v5.meta.unseen as UnseenStats).fields.creative.seen);
    const untrained = w.table.findIndex((x, id) => id > 0 && x === 0 && !seen.has(id));
    let collided = -1;
    for (let id = 1; id < w.table.length; id++) if (!seen.has(id) && (collided < 0 || w.table[id] * w.kernel[c] > w.table[collided] * w.kernel[c])) collided = id;
    expect(w.table[collided] * w.kernel[c]).toBeGreaterThan(0.3);
    const F = builder.spec.sparseFields;
    const as = (id: number) => {
      const sparse = day.sparse.slice(0, day.rows * F);
      for (let r = 0; r < day.rows; r++) sparse[r * F + c] = id;
      return sparse;
    };
    const dense = day.dense.subarray(0, day.rows * builder.spec.denseDim);
    const v4Untrained = v4.predict(as(untrained), dense, day.rows);
    expect(Array.from(v5.predict(as(untrained), dense, day.rows))).toEqual(Array.from(v4Untrained));
    const v5Collided = v5.predict(as(collided), dense, day.rows);
    for (let r = 0; r < day.rows; r++) expect(logit(v5Collided[r]) - logit(v4Untrained[r])).toBeCloseTo(0, 4);
    v5.dispose();
  }, 120_000);

  it('refuses statistics taken over other weights, and carries them over a refitted Platt step', async () => {
    // lr-v3's weights with lr-v5's statistics loaded and served before: means and seen ids of
    // another model's buckets.
    const dir = mkdtempSync(join(tmpdir(), 'unseen-'));
    cpSync('models/lr-v3', join(dir, 'lr-v3'), { recursive: true });
    const metaPath = join(dir, 'lr-v3', 'meta.json');
    const meta = JSON.parse(readFileSync(metaPath, 'utf8'));
    writeFileSync(metaPath, JSON.stringify({ ...meta, unseen: JSON.parse(readFileSync('models/lr-v5/meta.json', 'utf8')).unseen }));
    await expect(loadModel(join(dir, 'lr-v3'))).rejects.toThrow(/unseen was taken over other weights .* than weights\.bin's/);
    await expect(loadLayersModel(join(dir, 'lr-v3'))).rejects.toThrow(/unseen was taken over other weights/);
    // Statistics without the weights they were taken over are refused too.
    const { weights: _, ...unbound } = JSON.parse(readFileSync('models/lr-v5/meta.json', 'utf8')).unseen;
    writeFileSync(metaPath, JSON.stringify({ ...meta, unseen: unbound }));
    await expect(loadModel(join(dir, 'lr-v3'))).rejects.toThrow(/unseen must be \{rows: a positive integer, weights: the sha256/);
    // calibrate refits the Platt step alone: lr-v5-ipinyou serves with lr-v5's statistics.
    const ipinyou = await loadModel(resolveModelDir('models', 'lr-v5-ipinyou'));
    expect(ipinyou.meta.unseen).toEqual(JSON.parse(readFileSync('models/lr-v5/meta.json', 'utf8')).unseen);
    ipinyou.dispose();
  }, 120_000);

  it('train gives a new LR the rule: statistics over its training rows, its held-out rows scored by it', async () => {
    const data = simulatedRows({ seed: 7, worldSeed: 1, rows: 4000, campaigns: policies.campaigns });
    const r = await trainModel({ kind: 'lr', spec: builder.spec, data, rng: createRng(1), epochs: 1, lr: { seed: 1 } });
    expect(r.unseen!.rows).toBe(r.trainRows);
    const field = (name: string) => r.unseen!.fields[name];
    expect(field('os').present).toBe(r.trainRows);
    expect(field('os').seen.length).toBeGreaterThan(0);
    expect(field('segment0').present).toBeLessThan(r.trainRows);
    expect(field('segment0').seen.length).toBeGreaterThan(0);
    // A training row without its OS scores as with an OS it never saw, as served.
    const F = builder.spec.sparseFields;
    const os = builder.spec.sparseFieldNames.indexOf('os');
    const absent = data.sparse.slice(0, F);
    absent[os] = 0;
    const unseen = absent.slice();
    // A bucket nothing trained: the weight 0 recentring leaves an OS it never saw.
    const table = r.model.getLayer('weights').getWeights()[0].dataSync();
    unseen[os] = table.findIndex((w, id) => id > 0 && w === 0);
    const dense = data.dense.subarray(0, builder.spec.denseDim);
    expect(predictRows(r.model, builder.spec, absent, dense, 1)[0]).toBeCloseTo(predictRows(r.model, builder.spec, unseen, dense, 1)[0], 3);
    r.model.dispose();
  }, 120_000);
});
