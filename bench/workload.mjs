// The bench's workload, shared by bench.mjs, alloc.mjs and shortlist.mjs so that their figures
// describe the same catalog and the same requests.
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Bench catalog: 10 untargeted 300x250 campaigns answer every request (~10 candidates per imp);
 * the rest target other countries, so the index, not a scan, must skip them.
 */
export function writePolicies(root, dir, total, { maxBidCpmUsd = 50 } = {}) {
  for (const f of ['exchanges.yaml', 'currency.yaml']) copyFileSync(join(root, 'policies', f), join(dir, f));
  // https: the bench's requests are secure (imp.secure=1), which an http notice host may not answer; notices are sent by path.
  writeFileSync(join(dir, 'bidder.yaml'), `logLevel: warn\npublicUrl: https://bidder.bench.example\neventLog:\n  dir: ${join(dir, 'events')}\nledger:\n  journalPath: ${join(dir, 'ledger')}\n`);
  const countries = ['FRA', 'DEU', 'ITA', 'ESP', 'NLD', 'BEL', 'POL', 'SWE', 'NOR', 'DNK'];
  const lines = ['campaigns:'];
  for (let i = 0; i < total; i++) {
    const hot = i < 10;
    lines.push(
      `  - id: c${i}`,
      `    advertiser: adv${i}`,
      `    adomain: [adv${i}.example]`,
      `    cat: [IAB${(i % 20) + 1}]`,
      `    goal: { type: cpc, valueUsd: ${(0.5 + (i % 7) * 0.2).toFixed(2)} }`,
      `    budget: { dailyUsd: 1000000000 }`,
      `    maxBidCpmUsd: ${maxBidCpmUsd}`,
      hot ? `    targeting: {}` : `    targeting: { countries: [${countries[i % countries.length]}] }`,
      `    creatives:`,
      `      - { id: c${i}-a, format: banner, w: 300, h: 250, title: "Offer number ${i}", keywords: [k${i % 13}, shoes], landingUrl: "https://adv${i}.example/" }`,
    );
  }
  writeFileSync(join(dir, 'campaigns.yaml'), lines.join('\n') + '\n');
}

/**
 * With `catalog` set, the campaigns of `dir` replaced by a generated catalog of that many
 * campaigns (`bidder catalog`, from the built dist/); returns the catalog's name for the report.
 */
export async function writeCatalog(root, dir, catalog, seed, campaigns) {
  if (!catalog) return `${campaigns} campaigns (10 eligible per imp)`;
  const { generateCatalogYaml } = await import(join(root, 'dist/catalog/generate.js'));
  writeFileSync(join(dir, 'campaigns.yaml'), generateCatalogYaml({ campaigns: Number(catalog), seed: Number(seed) }));
  return `generated catalog of ${catalog} campaigns (seed ${seed})`;
}

/**
 * Corpus-like requests, each different (sites, users, categories, auction types), from a fixed
 * seed. `secondPriceOnly` makes every auction second price (and draws no auction type, which
 * keeps that stream as it was).
 */
export function requests(n, { secondPriceOnly = false } = {}) {
  const cats = ['IAB1', 'IAB2', 'IAB3-1', 'IAB12', 'IAB17', 'IAB19-6', 'IAB20'];
  const oses = ['iOS', 'Android', 'Windows', 'macOS'];
  let s = 42;
  const r = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push({
      id: `bench-${i}`,
      at: secondPriceOnly ? 2 : r() < 0.5 ? 1 : 2,
      tmax: 200,
      cur: ['USD'],
      imp: [{ id: '1', bidfloor: 0.01, bidfloorcur: 'USD', banner: { w: 300, h: 250, format: [{ w: 300, h: 250 }] }, secure: 1 }],
      site: { id: `site-${Math.floor(r() * 500)}`, domain: `pub${Math.floor(r() * 500)}.example`, cat: [cats[Math.floor(r() * cats.length)]], page: `https://pub.example/p/${i}`, publisher: { id: `pub-${Math.floor(r() * 100)}` } },
      device: { ua: 'Mozilla/5.0', ip: '203.0.113.7', devicetype: 2, os: oses[Math.floor(r() * oses.length)], geo: { country: 'USA', region: 'CA' } },
      user: { id: `user-${Math.floor(r() * 100000)}` },
      regs: { coppa: 0 },
    });
  }
  return out;
}

/**
 * The real requests of the test corpus (`test/fixtures/corpus`: Prebid Server's adapter fixtures
 * and the IAB spec's examples, attributed in its SOURCES.md), one JSON text each: the files of
 * requests an exchange could send, not the rejected file's. Real requests come in many shapes,
 * which the bench's own uniform mix does not show (V8's property reads go megamorphic).
 */
export function corpusRequests(root) {
  const dir = join(root, 'test/fixtures/corpus');
  const out = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.ndjson') && !n.includes('.meta.') && !n.includes('rejected')).sort()) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) if (line.trim()) out.push(line);
  }
  return out;
}

/**
 * autocannon options sending `bodies` (POST) with each connection starting at its own offset.
 * autocannon gives every connection the whole `requests` array from its first item, so 32
 * connections would send the same body at about the same moment all run long: a run of
 * identical concurrent requests, kinder to every cache than traffic is. The requests stay
 * prebuilt (building 2,000 per connection already takes ~1.6 s at the start).
 */
export function spreadBodies(bodies, connections) {
  let client = 0;
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: bodies.map((body) => ({ body })),
    setupClient(c) {
      const it = c.requestIterator;
      it.currentRequestIndex = Math.floor(((client++ % connections) * it.requests.length) / connections);
      it.currentRequest = it.requests[it.currentRequestIndex];
    },
  };
}

/**
 * autocannon options sending each of `paths` (GET) at most once over all connections: send with
 * `amount` ≤ paths.length − connections (each connection builds its next request ahead). A plain
 * `requests` array would have every connection send it from the first item: 32 connections and
 * 5,000 notices made 157 distinct notices, each sent 32 times.
 */
export function eachPathOnce(paths) {
  let next = 0;
  return { requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: paths[next++ % paths.length] }) }] };
}
