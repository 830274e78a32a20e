#!/usr/bin/env node
// npm run bench:eligibility — eligibility cost per request with 10 and with 10,000 campaigns
// (the same 10 match; the rest target other countries and sizes). The index should keep the two
// close: cost follows the matching candidates, not the catalog. Prints figures; asserts nothing.
import { join, resolve } from 'node:path';
const ROOT = resolve('.');
const { buildCatalog } = await import(join(ROOT, 'dist/eligibility/catalog.js'));
const { createEligibility } = await import(join(ROOT, 'dist/eligibility/eligibility.js'));
const { createPrivacy } = await import(join(ROOT, 'dist/eligibility/privacy.js'));

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
