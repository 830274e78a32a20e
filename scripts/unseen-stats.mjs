// Makes a version that scores as `--from` (same model.json and weights.bin) with the unseen-value
// rule of src/model/unseen.ts, its statistics taken over --from's own training rows, regenerated
// from its meta.json's data block (the simulator's rows are a pure function of it). The training
// rows are the first metrics.trainRows of them; they are streamed, not held.
//   node scripts/unseen-stats.mjs --from lr-v4 --version lr-v5 [--models models] [--in-place]
// --in-place rewrites the meta.json of an existing NEW whose model.json and weights.bin are
// --from's (for a version not yet released whose statistics were wrong: lr-v5's, once).
// (after `npx tsc -p tsconfig.json`: it runs the built dist/.)
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({ options: { from: { type: 'string' }, version: { type: 'string' }, models: { type: 'string', default: 'models' }, 'in-place': { type: 'boolean', default: false } } });
if (!o.from || !o.version) throw new Error('usage: node scripts/unseen-stats.mjs --from V --version NEW [--models DIR] [--in-place]');
const dist = new URL('../dist/', import.meta.url);
const { loadPolicies } = await import(new URL('config/policies.js', dist));
const { createFeatureBuilder } = await import(new URL('features/features.js', dist));
const { createMarket } = await import(new URL('sim/market.js', dist));
const { showImpressions } = await import(new URL('sim/dataset.js', dist));
const { unseenAccumulator, lrWeightsOf } = await import(new URL('model/unseen.js', dist));

const src = join(o.models, o.from);
const dst = join(o.models, o.version);
const inPlace = o['in-place'];
if (!inPlace && existsSync(dst)) throw new Error(`${dst} exists: versions are immutable`);
if (inPlace && !['model.json', 'weights.bin'].every((f) => existsSync(join(dst, f)) && readFileSync(join(dst, f)).equals(readFileSync(join(src, f))))) {
  throw new Error(`--in-place: ${dst} must hold ${src}'s model.json and weights.bin`);
}
const meta = JSON.parse(readFileSync(join(src, 'meta.json'), 'utf8'));
const { data, metrics } = meta;
if (meta.kind !== 'lr' || data?.source !== 'simulator' || !Number.isInteger(metrics?.trainRows)) throw new Error(`${o.from}: an LR trained on simulated rows, with metrics.trainRows, is needed`);
const modelJson = JSON.parse(readFileSync(join(src, 'model.json'), 'utf8'));
const bin = readFileSync(join(src, 'weights.bin'));
const weights = lrWeightsOf(modelJson.weightsManifest[0].weights, bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
const campaigns = loadPolicies(data.policies).campaigns;
const builder = createFeatureBuilder();
if (meta.featureSpecHash !== builder.spec.hash) throw new Error(`${o.from} was built for feature spec ${meta.featureSpecHash}, this tree has ${builder.spec.hash}`);
// As simulatedRows (src/sim/dataset.ts) sizes the day for data.rows.
const market = createMarket({ seed: data.seed, worldSeed: data.worldSeed, campaigns, requestsPerDay: Math.ceil(data.rows * 1.5), profile: data.market });
const acc = unseenAccumulator(builder.spec, weights);
const row = builder.allocate(1);
const t0 = Date.now();
let n = 0;
for (const s of showImpressions({ market, campaigns, builder, maxImpressions: metrics.trainRows })) {
  builder.writeRow(s.ctx, s.prepared, s.profile, row.sparse, row.dense, 0);
  acc.add(row.sparse, 1);
  if (++n % 1_000_000 === 0) process.stderr.write(`${n} rows, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
}
if (n !== metrics.trainRows) throw new Error(`regenerated ${n} rows, ${o.from} trained on ${metrics.trainRows}`);
const unseen = acc.result();
const tmp = join(o.models, `.${o.version}.tmp-${process.pid}`);
mkdirSync(tmp);
if (!inPlace) {
  copyFileSync(join(src, 'model.json'), join(tmp, 'model.json'));
  copyFileSync(join(src, 'weights.bin'), join(tmp, 'weights.bin'));
}
const command = `node scripts/unseen-stats.mjs --from ${o.from} --version ${o.version} (the weights: ${meta.command})`;
const out = { ...meta, version: o.version, command, params: { ...meta.params, weightsFrom: o.from }, unseen };
// Each field's seen ids on one line: thousands of them, one a line, would bury the rest of the file.
const text = JSON.stringify(out, (k, v) => (k === 'seen' ? `@@${JSON.stringify(v)}@@` : v), 2).replace(/"@@(\[[^"]*\])@@"/g, '$1');
writeFileSync(join(tmp, 'meta.json'), `${text}\n`);
if (inPlace) {
  renameSync(join(tmp, 'meta.json'), join(dst, 'meta.json'));
  rmdirSync(tmp);
} else renameSync(tmp, dst);
const summary = Object.fromEntries(Object.entries(unseen.fields).map(([f, v]) => [f, { always: v.present === unseen.rows, mean: +v.mean.toFixed(4), seen: v.seen.length }]));
process.stdout.write(`${JSON.stringify({ version: o.version, from: o.from, rows: n, seconds: (Date.now() - t0) / 1000, fields: summary })}\n`);
