// npm run bench:alloc [-- --duration S --connections N --campaigns N]
// Bytes allocated on the JS heap per bid request: the bench's catalog and requests
// (bench/bench.mjs: 10 campaigns eligible per imp, 2,000 distinct bodies), the bidder under
// autocannon and `node --trace-gc-nvp`; the `allocated=` fields of the GC lines printed during the
// measured window (bytes allocated since the GC before) sum to what the window allocated, to
// within one young generation. ArrayBuffer backing stores (typed arrays' contents, Buffers) live
// outside the JS heap and are not counted, only their small wrapper objects. V8's sampling heap
// profiler would say by whom, but on Node 20 it reports only objects still alive.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '32' },
    campaigns: { type: 'string', default: '1000' },
    models: { type: 'string', default: 'models' },
  },
});
const ROOT = resolve('.');
const work = mkdtempSync(join(tmpdir(), 'bidder-alloc-'));

// The bench's policies and requests (bench/bench.mjs), so the figures compare with its CPU figures.
for (const f of ['exchanges.yaml', 'currency.yaml']) copyFileSync(join(ROOT, 'policies', f), join(work, f));
writeFileSync(join(work, 'bidder.yaml'), `logLevel: warn\npublicUrl: https://bidder.bench.example\neventLog:\n  dir: ${join(work, 'events')}\nledger:\n  journalPath: ${join(work, 'ledger')}\n`);
{
  const countries = ['FRA', 'DEU', 'ITA', 'ESP', 'NLD', 'BEL', 'POL', 'SWE', 'NOR', 'DNK'];
  const lines = ['campaigns:'];
  for (let i = 0; i < Number(args.campaigns); i++) {
    const hot = i < 10;
    lines.push(
      `  - id: c${i}`,
      `    advertiser: adv${i}`,
      `    adomain: [adv${i}.example]`,
      `    cat: [IAB${(i % 20) + 1}]`,
      `    goal: { type: cpc, valueUsd: ${(0.5 + (i % 7) * 0.2).toFixed(2)} }`,
      `    budget: { dailyUsd: 1000000000 }`,
      `    maxBidCpmUsd: 20`,
      hot ? `    targeting: {}` : `    targeting: { countries: [${countries[i % countries.length]}] }`,
      `    creatives:`,
      `      - { id: c${i}-a, format: banner, w: 300, h: 250, title: "Offer number ${i}", keywords: [k${i % 13}, shoes], landingUrl: "https://adv${i}.example/" }`,
    );
  }
  writeFileSync(join(work, 'campaigns.yaml'), lines.join('\n') + '\n');
}
function requests(n) {
  const cats = ['IAB1', 'IAB2', 'IAB3-1', 'IAB12', 'IAB17', 'IAB19-6', 'IAB20'];
  const oses = ['iOS', 'Android', 'Windows', 'macOS'];
  let s = 42;
  const r = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push(
      JSON.stringify({
        id: `bench-${i}`,
        at: r() < 0.5 ? 1 : 2,
        tmax: 200,
        cur: ['USD'],
        imp: [{ id: '1', bidfloor: 0.01, bidfloorcur: 'USD', banner: { w: 300, h: 250, format: [{ w: 300, h: 250 }] }, secure: 1 }],
        site: { id: `site-${Math.floor(r() * 500)}`, domain: `pub${Math.floor(r() * 500)}.example`, cat: [cats[Math.floor(r() * cats.length)]], page: `https://pub.example/p/${i}`, publisher: { id: `pub-${Math.floor(r() * 100)}` } },
        device: { ua: 'Mozilla/5.0', ip: '203.0.113.7', devicetype: 2, os: oses[Math.floor(r() * oses.length)], geo: { country: 'USA', region: 'CA' } },
        user: { id: `user-${Math.floor(r() * 100000)}` },
        regs: { coppa: 0 },
      }),
    );
  }
  return out;
}

const child = spawn('node', ['--trace-gc-nvp', 'dist/cli.js', 'serve', '--policies', work, '--models', resolve(args.models), '--port', '0', '--host', '127.0.0.1', '--log-level', 'info'], {
  cwd: ROOT,
  env: { ...process.env, NOTICE_SECRET: 'bench-secret-0123456789abcdef' },
  stdio: ['ignore', 'pipe', 'pipe'],
});
let allocated = 0;
let gcs = 0;
let tail = '';
const port = await new Promise((res, rej) => {
  let buf = '';
  child.stdout.on('data', (d) => {
    const text = tail + d;
    const lines = text.split('\n');
    tail = lines.pop();
    for (const line of lines) {
      const m = / allocated=(\d+)/.exec(line);
      // A size_t: V8 prints a negative correction as its unsigned 64-bit value.
      if (m) ((allocated += Number(BigInt.asIntN(64, BigInt(m[1])))), gcs++);
      else if (buf.length < 100_000) buf += line + '\n';
      const p = /"port":(\d+)[^\n]*bidder listening/.exec(line);
      if (p) res(Number(p[1]));
    }
  });
  child.stderr.on('data', (d) => (buf += d));
  child.on('exit', (code) => rej(new Error(`bidder exited ${code}: ${buf.slice(-2000)}`)));
});
try {
  const url = `http://127.0.0.1:${port}/openrtb2/bid`;
  const bodies = requests(2000).map((b) => ({ body: b }));
  const load = (duration) => autocannon({ url, connections: Number(args.connections), duration, method: 'POST', headers: { 'content-type': 'application/json' }, requests: bodies });
  await load(3);
  const a0 = allocated;
  const g0 = gcs;
  const res = await load(Number(args.duration));
  await new Promise((r) => setTimeout(r, 100));
  const bytes = allocated - a0;
  const n = res.requests.total;
  console.log(`alloc: ${n} bid requests in ${args.duration} s (${Math.round(res.requests.average)} req/s, ${res['2xx']} answered 2xx), ${args.campaigns} campaigns (10 eligible per imp), ${gcs - g0} GCs`);
  console.log(`JS heap allocated: ${(bytes / 1e6).toFixed(1)} MB, ${(bytes / n / 1024).toFixed(1)} KB per bid request`);
} finally {
  child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
