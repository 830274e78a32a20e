#!/usr/bin/env node
// npm run bench:eligibility [-- --catalog N --seed S --base-dist DIR]
// Eligibility cost per request. Two cases:
// - 10 and 10,000 campaigns where the same 10 match (the rest target other countries and sizes):
//   the index should keep the two close, cost following the matching candidates, not the catalog.
// - a generated catalog (`bidder catalog --campaigns N --seed S`, default 1,000 campaigns, seed 1)
//   under the bench's requests (bench/workload.mjs): `plan` and then the candidate cut
//   (`maxCandidatesPerImp` 16), the pipeline's eligibility work, with the daemon's own paused set
//   and local frequency store.
// - the same catalog under the real requests of test/fixtures/corpus (bench/workload.mjs
//   `corpusRequests`, validated and coerced as the pipeline does first; those it refuses left out):
//   real requests come in many shapes and media, which the bench's one-imp banners do not show.
//   With --base-dist DIR (a base build's dist/, e.g. the worktree `npm run bench -- --base REF`
//   leaves), the base's eligibility runs the same requests in rounds alternating with head's.
//   Each round of this case is a fresh process per build (this script with --corpus-round DIST),
//   the builds' order alternating from round to round, so head's code does not arrive with the
//   history of the sections above (in one process it had run them and the base's had not: an
//   identical copy as base read 37-40 µs against head's 39-54). Each such process generates the
//   catalog and validates the corpus with head's dist, builds the catalog with the build's own
//   code, runs 20,000 requests to warm up and then times 20,000.
// Prints figures; asserts nothing.
import { mkdtempSync, writeFileSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { corpusRequests, requests } from './workload.mjs';

const { values: args } = parseArgs({ options: { catalog: { type: 'string', default: '1000' }, seed: { type: 'string', default: '1' }, 'base-dist': { type: 'string' }, 'corpus-round': { type: 'string' } } });
const ROOT = resolve('.');
const d = (p) => import(join(ROOT, 'dist', p));
const clock = () => Date.UTC(2026, 11, 2, 15);

/** The generated catalog's policy set, loaded by head's dist. */
async function generatedPolicies() {
  const { generateCatalogYaml } = await d('catalog/generate.js');
  const { loadPolicies } = await d('config/policies.js');
  const dir = mkdtempSync(join(tmpdir(), 'bidder-elig-'));
  try {
    for (const f of ['exchanges.yaml', 'currency.yaml']) copyFileSync(join('policies', f), join(dir, f));
    writeFileSync(join(dir, 'campaigns.yaml'), generateCatalogYaml({ campaigns: Number(args.catalog), seed: Number(args.seed) }));
    return loadPolicies(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One timed round of the corpus case for the build at `dist`, in this (fresh) process: prints one JSON line. */
async function corpusRound(dist) {
  const policies = await generatedPolicies();
  // The corpus's real requests as the pipeline sees them: validated first (by head's validator).
  const { createValidator } = await d('validate/validate.js');
  const validator = createValidator({ maxTmaxMs: 1000, maxImps: 100 });
  const real = [];
  for (const b of corpusRequests(ROOT)) {
    try {
      real.push(validator(JSON.parse(b)));
    } catch {
      // refused with a 400 before eligibility
    }
  }
  const m = (p) => import(pathToFileURL(resolve(dist, p)).href);
  const { buildCatalog: build } = await m('eligibility/catalog.js');
  const { createEligibility: create } = await m('eligibility/eligibility.js');
  const { createPrivacy: privacy } = await m('eligibility/privacy.js');
  const { createLocalFrequencyStore: store } = await m('freqcap/index.js');
  const f = store({ clock });
  const paused = new Set();
  const e = create({
    catalog: build(policies.campaigns), ratesPerUsd: policies.ratesPerUsd, privacy: privacy(), clock,
    userKey: (r) => r.user?.id ?? '', isPaused: (id) => paused.has(id), anyPaused: () => paused.size !== 0, frequency: (u, c, w) => f.count(u, c, w),
  });
  const run = (iters) => {
    let kept = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) for (const p of e.plan(real[i % real.length], 'example', 'USD', undefined, 16).imps) kept += p.eligible.length;
    return { kept: kept / iters, us: Number(process.hrtime.bigint() - t0) / iters / 1000 };
  };
  run(20000); // warm-up
  const r = run(20000);
  console.log(JSON.stringify({ ...r, requests: real.length, imps: real.reduce((n, q) => n + q.imp.length, 0) / real.length }));
}
if (args['corpus-round']) {
  await corpusRound(args['corpus-round']);
  process.exit(0);
}

const { buildCatalog } = await d('eligibility/catalog.js');
const { createEligibility } = await d('eligibility/eligibility.js');
const { createPrivacy } = await d('eligibility/privacy.js');
const { createLocalFrequencyStore } = await d('freqcap/index.js');

const COUNTRIES = ['FRA', 'DEU', 'ITA', 'ESP', 'NLD', 'BEL', 'POL', 'SWE', 'NOR', 'DNK'];
const SIZES = [[728, 90], [320, 50], [300, 600], [160, 600]];

function campaigns(n) {
  return Array.from({ length: n }, (_, i) => {
    const hot = i < 10;
    const [w, h] = hot ? [300, 250] : SIZES[i % SIZES.length];
    return {
      id: `c${i}`, advertiser: `a${i}`, adomain: [`a${i}.example`], cat: [`IAB${(i % 20) + 1}`],
      goal: { type: 'cpc', valueUsd: 1 }, budget: { dailyUsd: 1e9 }, maxBidCpmUsd: 50, onNoConsent: 'contextual',
      targeting: hot ? {} : { countries: [COUNTRIES[i % COUNTRIES.length]], hours: [i % 24] },
      creatives: [{ id: `c${i}-a`, campaignId: `c${i}`, format: 'banner', w, h, attr: [], title: 't', keywords: [], imageEmbedding: [0, 0, 0, 0, 0, 0, 0, 0], landingUrl: 'https://x.example/' }],
    };
  });
}

const req = { id: 'r', imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's', domain: 'd.example', cat: ['IAB12'] }, device: { geo: { country: 'USA' }, devicetype: 2, os: 'iOS' }, user: { id: 'u' } };

function bench(n) {
  const e = createEligibility({
    catalog: buildCatalog(campaigns(n)), ratesPerUsd: new Map([['USD', 1]]), privacy: createPrivacy(), clock: () => 1780000000000,
    userKey: () => 'k', isPaused: () => false, frequency: () => 0,
  });
  let eligible = 0;
  for (let i = 0; i < 20000; i++) eligible = e.plan(req, 'default', 'USD').imps[0].eligible.length;
  const iters = 200000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) e.plan(req, 'default', 'USD');
  const ns = Number(process.hrtime.bigint() - t0) / iters;
  return { campaigns: n, eligible, usPerRequest: +(ns / 1000).toFixed(2) };
}

const rows = [bench(10), bench(10000), bench(10), bench(10000)];
console.log('| campaigns | eligible per imp | µs per request |\n| ---: | ---: | ---: |');
for (const r of rows) console.log(`| ${r.campaigns} | ${r.eligible} | ${r.usPerRequest} |`);

// The generated catalog under the bench's requests.
const policies = await generatedPolicies();
const paused = new Set();
const freq = createLocalFrequencyStore({ clock });
const gen = createEligibility({
  catalog: buildCatalog(policies.campaigns), ratesPerUsd: policies.ratesPerUsd, privacy: createPrivacy(), clock,
  userKey: (r) => r.user?.id ?? '', isPaused: (id) => paused.has(id), anyPaused: () => paused.size !== 0, frequency: (u, c, w) => freq.count(u, c, w),
});
const reqs = requests(2000);
// Some users have seen some campaigns, so caps are looked up for real.
for (let i = 0; i < reqs.length; i += 3) for (const c of policies.campaigns.slice(0, 50)) if (c.frequencyCap) await freq.record(reqs[i].user.id, c.id);
function genRound(iters) {
  let kept = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) {
    // The cut as the pipeline asks for it; `cut` after it is a no-op where plan applies the cut
    // itself, and the cut where an older plan does not (this script also runs against a base).
    const plan = gen.plan(reqs[i % reqs.length], 'example', 'USD', undefined, 16);
    for (const p of plan.imps) {
      const cut = gen.shortlist.cut(p.eligible, 16);
      kept += cut.length;
      // Priors as scoring teaches them (a pCTR fixed per candidate), so the cut ranks real bounds.
      for (const el of cut) gen.shortlist.learn(el.cand.idx, 0.001 + ((el.cand.idx * 2654435761) >>> 0) / 2 ** 32 / 50, 1);
    }
  }
  const ns = Number(process.hrtime.bigint() - t0) / iters;
  return { kept: kept / iters, us: ns / 1000 };
}
let eligible = 0;
for (const r of reqs) for (const p of gen.plan(r, 'example', 'USD').imps) eligible += p.eligible.length;
eligible /= reqs.length;
genRound(20000);
const gens = [genRound(40000), genRound(40000), genRound(40000)];
console.log(`\ngenerated catalog of ${args.catalog} campaigns (seed ${args.seed}, ${policies.campaigns.reduce((s, c) => s + c.creatives.length, 0)} candidates), the bench's ${reqs.length} requests, plan + cut to 16:`);
console.log('| eligible per imp | kept per imp | µs per request |\n| ---: | ---: | ---: |');
for (const g of gens) console.log(`| ${eligible.toFixed(1)} | ${g.kept.toFixed(1)} | ${g.us.toFixed(2)} |`);

// The same catalog under the corpus's real requests, each round a fresh process per build.
const builds = [{ name: 'dist', dist: join(ROOT, 'dist') }];
if (args['base-dist']) builds.push({ name: args['base-dist'], dist: resolve(args['base-dist']) });
const byCase = builds.map(() => []);
for (let round = 0; round < 5; round++) {
  const order = round % 2 ? [...builds.keys()].reverse() : [...builds.keys()];
  for (const i of order) {
    const out = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--corpus-round', builds[i].dist, '--catalog', args.catalog, '--seed', args.seed], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    byCase[i].push(JSON.parse(out.trim().split('\n').pop()));
  }
}
const first = byCase[0][0];
console.log(`\nthe same catalog, the ${first.requests} real requests of test/fixtures/corpus the validator accepts (${first.imps.toFixed(2)} imps each), plan with the cut to 16, 5 rounds, each a fresh process per build${builds.length > 1 ? ', the order alternating' : ''}:`);
console.log('| build | kept per request | µs per request, median | min | max |\n| --- | ---: | ---: | ---: | ---: |');
builds.forEach((c, i) => {
  const us = byCase[i].map((x) => x.us).sort((a, b) => a - b);
  console.log(`| ${c.name} | ${byCase[i][0].kept.toFixed(2)} | ${us[2].toFixed(2)} | ${us[0].toFixed(2)} | ${us[4].toFixed(2)} |`);
});
