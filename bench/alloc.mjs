// npm run bench:alloc [-- --duration S --connections N --campaigns N | --catalog N --seed S --sample]
// Bytes allocated on the JS heap per bid request: the bench's catalog and requests
// (bench/bench.mjs: 10 campaigns eligible per imp, 2,000 distinct bodies), the bidder under
// autocannon and `node --trace-gc-nvp`; the `allocated=` fields of the GC lines printed during the
// measured window (bytes allocated since the GC before) sum to what the window allocated, to
// within one young generation. ArrayBuffer backing stores (typed arrays' contents, Buffers) live
// outside the JS heap and are not counted, only their small wrapper objects.
// Also, per kind of GC in the window (scavenge, mark-compact): how many, their pauses on the main
// thread, and the bytes they promoted to the old generation per bid request (what a bid leaves
// behind: kept past one scavenge, it is copied, promoted and later marked).
// --catalog N: a generated catalog of N campaigns, as `npm run bench -- --catalog N` serves.
// --sample: also say by whom, from V8's sampling heap profiler over the measured window (objects
// since collected included; bench/heap-sample.mjs): bytes per bid request by allocating function
// (self) and by the bidder's function on the stack nearest to the allocation.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { requests, spreadBodies, writeCatalog, writePolicies } from './workload.mjs';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '32' },
    campaigns: { type: 'string', default: '1000' },
    catalog: { type: 'string' },
    seed: { type: 'string', default: '1' },
    models: { type: 'string', default: 'models' },
    sample: { type: 'boolean', default: false },
  },
});
const ROOT = resolve('.');
const work = mkdtempSync(join(tmpdir(), 'bidder-alloc-'));

// The bench's policies and requests (bench/workload.mjs), so the figures compare with its CPU figures.
writePolicies(ROOT, work, Number(args.campaigns), { maxBidCpmUsd: 20 });
const catalogName = await writeCatalog(ROOT, work, args.catalog, args.seed, args.campaigns);

const samplePath = join(work, 'heap-sample.json');
const sampleArgs = args.sample ? ['--import', resolve('bench/heap-sample.mjs'), ...(process.env.ALLOC_NODE_FLAGS ?? '').split(' ').filter(Boolean)] : [];
const child = spawn('node', ['--trace-gc-nvp', ...sampleArgs, 'dist/cli.js', 'serve', '--policies', work, '--models', resolve(args.models), '--port', '0', '--host', '127.0.0.1', '--log-level', 'info'], {
  cwd: ROOT,
  env: { ...process.env, NOTICE_SECRET: 'bench-secret-0123456789abcdef', BIDDER_HEAP_SAMPLE: samplePath },
  stdio: ['ignore', 'pipe', 'pipe'],
});
let allocated = 0;
let gcs = 0;
/** Per GC kind (trace-gc-nvp's gc=s, mc, ...), while `measuring`: count, pause sum and max (ms), bytes promoted. */
let byKind = null;
const KIND = { s: 'scavenge', mc: 'mark-compact', mmc: 'minor mark-compact' };
let tail = '';
let mainIsolate = null;
const port = await new Promise((res, rej) => {
  let buf = '';
  child.stdout.on('data', (d) => {
    const text = tail + d;
    const lines = text.split('\n');
    tail = lines.pop();
    for (const line of lines) {
      const m = /^\[\d+:(0x[0-9a-f]+)\].* allocated=(\d+)/.exec(line);
      if (m) {
        // The main thread's isolate prints first; a worker's (the ledger's compaction) GCs are its own.
        mainIsolate ??= m[1];
        if (m[1] !== mainIsolate) continue;
        // A size_t: V8 prints a negative correction as its unsigned 64-bit value.
        allocated += Number(BigInt.asIntN(64, BigInt(m[2])));
        gcs++;
        const g = byKind && / pause=([\d.]+) .* gc=(\w+) .* promoted=(\d+) /.exec(line);
        if (g) {
          const k = (byKind[KIND[g[2]] ?? g[2]] ??= { n: 0, pauseMs: 0, maxMs: 0, promoted: 0 });
          k.n++;
          k.pauseMs += Number(g[1]);
          k.maxMs = Math.max(k.maxMs, Number(g[1]));
          k.promoted += Number(g[3]);
        }
      } else if (buf.length < 100_000) buf += line + '\n';
      const p = /"port":(\d+)[^\n]*bidder listening/.exec(line);
      if (p) res(Number(p[1]));
    }
  });
  child.stderr.on('data', (d) => (buf += d));
  child.on('exit', (code) => rej(new Error(`bidder exited ${code}: ${buf.slice(-2000)}`)));
});
try {
  const url = `http://127.0.0.1:${port}/openrtb2/bid`;
  const bodies = requests(2000).map((b) => JSON.stringify(b));
  const load = (duration) => autocannon({ url, connections: Number(args.connections), duration, ...spreadBodies(bodies, Number(args.connections)) });
  await load(3);
  const a0 = allocated;
  const g0 = gcs;
  byKind = {};
  if (args.sample) (child.kill('SIGUSR2'), await new Promise((r) => setTimeout(r, 200)));
  const res = await load(Number(args.duration));
  await new Promise((r) => setTimeout(r, 100));
  if (args.sample) {
    child.kill('SIGUSR2');
    for (let i = 0; i < 50 && !existsSync(samplePath); i++) await new Promise((r) => setTimeout(r, 100));
  }
  const bytes = allocated - a0;
  const kinds = byKind;
  byKind = null;
  const n = res.requests.total;
  console.log(`alloc: ${n} bid requests in ${args.duration} s (${Math.round(res.requests.average)} req/s, ${res['2xx']} answered 2xx), ${catalogName}, ${gcs - g0} GCs`);
  console.log(`JS heap allocated: ${(bytes / 1e6).toFixed(1)} MB, ${(bytes / n / 1024).toFixed(1)} KB per bid request`);
  for (const [kind, k] of Object.entries(kinds)) {
    console.log(`${kind}: ${k.n}, pause mean ${(k.pauseMs / k.n).toFixed(2)} ms, max ${k.maxMs.toFixed(1)} ms; promoted ${(k.promoted / n).toFixed(0)} B per bid request`);
  }
  if (args.sample) printSample(JSON.parse(readFileSync(samplePath, 'utf8')), n);
} finally {
  child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}

/** The sampled bytes per bid request: by allocating function, and by the nearest frame in the bidder's own code (dist/). */
function printSample(profile, requests) {
  const self = new Map();
  const own = new Map();
  let total = 0;
  const name = (cf) => `${cf.functionName || '(anonymous)'} ${cf.url.replace(/^.*\/node_modules\//, '').replace(/^.*\/dist\//, 'dist/')}:${cf.lineNumber + 1}`;
  const walk = (node, ownFrame) => {
    const cf = node.callFrame;
    const here = cf.url.includes('/dist/') ? name(cf) : ownFrame;
    if (node.selfSize) {
      total += node.selfSize;
      self.set(name(cf), (self.get(name(cf)) ?? 0) + node.selfSize);
      own.set(here, (own.get(here) ?? 0) + node.selfSize);
    }
    for (const c of node.children) walk(c, here);
  };
  walk(profile.head, '(outside the bidder)');
  const top = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, v]) => `  ${(v / requests).toFixed(0).padStart(6)} B  ${((v / total) * 100).toFixed(1).padStart(5)} %  ${k}`).join('\n');
  console.log(`\nsampled: ${(total / requests / 1024).toFixed(1)} KB per bid request\nby allocating function (self):\n${top(self)}\nby the bidder's nearest frame:\n${top(own)}`);
}
