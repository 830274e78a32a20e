// npm run bench:shortlist [-- --catalog N --seed S --requests N --k 4,8,16,32,64]
// What the candidate cut before scoring (src/eligibility/shortlist.ts) costs in value: the bench's
// requests against a generated catalog; every eligible candidate of every imp is scored (the full
// choice), and each rule is replayed over the same requests in the same order, learning its priors
// only from the rows it kept, as the bidder does. Priced as the pipeline prices in second price
// with a pacing multiplier of 1 (the value of the best candidate kept); no pacer, no budgets.
// Prints, per rule, the share of imps whose chosen candidate is the full scoring's, the value kept
// (sum over imps of the best kept value / the full best value) and the rows scored per imp.
import { mkdtempSync, writeFileSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { requests } from './workload.mjs';

const { values: args } = parseArgs({
  options: {
    catalog: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    requests: { type: 'string', default: '3000' },
    k: { type: 'string', default: '4,8,16,32,64' },
    models: { type: 'string', default: 'models' },
  },
});
const ROOT = resolve('.');
const d = (p) => import(join(ROOT, 'dist', p));
const { generateCatalogYaml } = await d('catalog/generate.js');
const { loadPolicies } = await d('config/policies.js');
const { buildCatalog } = await d('eligibility/catalog.js');
const { createEligibility } = await d('eligibility/eligibility.js');
const { createShortlist } = await d('eligibility/shortlist.js');
const { createPrivacy } = await d('eligibility/privacy.js');
const { createFeatureBuilder } = await d('features/features.js');
const { createPricer, DEFAULT_PCVR } = await d('price/price.js');
const { selectBackend } = await d('model/backend.js');
const { loadModel, resolveModelDir } = await d('model/store.js');

const dir = mkdtempSync(join(tmpdir(), 'bidder-cut-'));
for (const f of ['exchanges.yaml', 'currency.yaml']) copyFileSync(join('policies', f), join(dir, f));
writeFileSync(join(dir, 'campaigns.yaml'), generateCatalogYaml({ campaigns: Number(args.catalog), seed: Number(args.seed) }));
const policies = loadPolicies(dir);
rmSync(dir, { recursive: true, force: true });
const catalog = buildCatalog(policies.campaigns);
const eligibility = createEligibility({
  catalog,
  ratesPerUsd: policies.ratesPerUsd,
  privacy: createPrivacy(),
  clock: () => Date.UTC(2026, 11, 2, 15),
  userKey: (req) => req.user?.id ?? '',
  isPaused: () => false,
  frequency: () => 0,
});
const features = createFeatureBuilder();
const prepared = new Map();
for (const c of policies.campaigns) for (const cr of c.creatives) prepared.set(cr.id, features.prepareCreative(cr, c));
await selectBackend('wasm');
const model = await loadModel(resolveModelDir(resolve(args.models)));
const price = createPricer(null);

// Every imp's eligible candidates with their model pCTR and full-price value.
const imps = [];
for (const req of requests(Number(args.requests), { secondPriceOnly: true })) {
  const plan = eligibility.plan(req, 'example', 'USD');
  for (const p of plan.imps) {
    const n = p.eligible.length;
    if (n === 0) continue;
    const { sparse, dense } = features.allocate(n);
    features.writeRows(p.ctx, p.eligible.map((e) => prepared.get(e.cand.creative.id)), undefined, sparse, dense, 0);
    const pctr = model.predict(sparse, dense, n);
    const value = p.eligible.map((e, i) => price({ campaign: e.cand.campaign, pctr: pctr[i], pcvr: DEFAULT_PCVR, multiplier: 1, floorUsd: e.floorUsd, auctionType: 2, segment: '' }));
    imps.push({ eligible: p.eligible, pctr: Array.from(pctr), value });
  }
}

function replay(name, pick, from = 0) {
  let same = 0;
  let kept = 0;
  let full = 0;
  let rows = 0;
  let rowsMax = 0;
  let count = 0;
  for (let n = 0; n < imps.length; n++) {
    const im = imps[n];
    const keptIdx = pick(im);
    if (n < from) continue;
    count++;
    rows += keptIdx.length;
    rowsMax = Math.max(rowsMax, keptIdx.length);
    let best = -1;
    let bestV = 0;
    for (const i of keptIdx) if (im.value[i] > bestV) ((best = i), (bestV = im.value[i]));
    let fb = -1;
    let fbV = 0;
    for (let i = 0; i < im.value.length; i++) if (im.value[i] > fbV) ((fb = i), (fbV = im.value[i]));
    if (best === fb) same++;
    kept += bestV;
    full += fbV;
  }
  return { rule: name, sameChoice: same / count, valueKept: kept / full, rowsPerImp: +(rows / count).toFixed(1), rowsMax };
}

const eligibleMean = imps.reduce((a, im) => a + im.eligible.length, 0) / imps.length;
console.log(`shortlist: ${imps.length} imps of ${args.requests} bench requests, generated catalog of ${args.catalog} campaigns (seed ${args.seed}), ${eligibleMean.toFixed(1)} eligible per imp (max ${Math.max(...imps.map((im) => im.eligible.length))}), model ${model.version}, second price, multiplier 1`);
const out = [replay('all eligible (no cut)', (im) => im.eligible.map((_, i) => i)), replay('first 64 in catalog order (the rule before)', (im) => im.eligible.slice(0, 64).map((_, i) => i))];
for (const k of args.k.split(',').map(Number)) {
  // Priors learnt only from the rows the rule kept; measured over all imps, then over the second half (warm priors).
  for (const from of [0, imps.length >> 1]) {
    const s = createShortlist(catalog.candidates.length);
    out.push(
      replay(
        `shortlist k=${k}${from ? ', second half' : ''}`,
        (im) => {
          const pos = new Map(im.eligible.map((e, i) => [e, i]));
          const cut = s.cut([...im.eligible], k).map((e) => pos.get(e));
          for (const i of cut) s.learn(im.eligible[i].cand.idx, im.pctr[i], 1);
          return cut;
        },
        from,
      ),
    );
  }
}
console.log('| rule | same choice as full scoring | value kept | rows scored per imp (mean / max) |');
console.log('| --- | ---: | ---: | ---: |');
for (const r of out) console.log(`| ${r.rule} | ${(r.sameChoice * 100).toFixed(1)} % | ${(r.valueKept * 100).toFixed(2)} % | ${r.rowsPerImp} / ${r.rowsMax} |`);
