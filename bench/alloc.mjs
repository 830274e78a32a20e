// npm run bench:alloc [-- --duration S --connections N --campaigns N]
// Bytes allocated on the JS heap per bid request: the bench's catalog and requests
// (bench/bench.mjs: 10 campaigns eligible per imp, 2,000 distinct bodies), the bidder under
// autocannon and `node --trace-gc-nvp`; the `allocated=` fields of the GC lines printed during the
// measured window (bytes allocated since the GC before) sum to what the window allocated, to
// within one young generation. ArrayBuffer backing stores (typed arrays' contents, Buffers) live
// outside the JS heap and are not counted, only their small wrapper objects. V8's sampling heap
// profiler would say by whom, but on Node 20 it reports only objects still alive.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { requests, writePolicies } from './workload.mjs';

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

// The bench's policies and requests (bench/workload.mjs), so the figures compare with its CPU figures.
writePolicies(ROOT, work, Number(args.campaigns), { maxBidCpmUsd: 20 });

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
  const bodies = requests(2000).map((b) => ({ body: JSON.stringify(b) }));
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
