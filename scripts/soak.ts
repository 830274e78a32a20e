/**
 * Soak: `npm run soak -- --minutes N [--fraction 0.5 | --rate R] [--connections 32] [--models DIR] [--notice-ttl-s 60]`.
 *
 * Starts `bidder serve` as a child process (demo policies, event log and journal in a temp dir),
 * measures its saturation rate with a short autocannon burst over varied corpus requests, then
 * drives it at `fraction` of that rate for N minutes. Every 10 s it prints the child's RSS (from
 * /proc) and the window's answered rate and latency percentiles; at the end, the memory trend.
 * Exits 1 if the bidder died, answered a 5xx, or connections failed; it measures, it does not judge
 * memory growth (read the figures).
 *
 * The bidder remembers each bid for its notice TTL plus the ledger's retention (2 x TTL), so its
 * memory levels off after 3 x TTL: 30 minutes with the default 10-minute TTL. The soak sends no
 * notices and sets a 60 s TTL by default, so that steady state is reached after 3 minutes of the
 * run; `--notice-ttl-s 600` soaks with the production default.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { spawnBidder } from '../src/harness/bidder.js';
import { processRssBytes } from '../src/harness/process.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const minutes = Number(arg('minutes', '2'));
const fraction = Number(arg('fraction', '0.5'));
const connections = Number(arg('connections', '32'));
const models = arg('models', process.env.TEST_MODELS_DIR ?? 'models');
const noticeTtlS = Number(arg('notice-ttl-s', '60'));
// A fixed rate makes runs comparable on a machine whose other load moves the measured saturation.
const fixedRate = arg('rate', '') === '' ? null : Number(arg('rate', ''));
const REPORT_EVERY_MS = 10_000;
if (!(minutes > 0) || !(fraction > 0 && fraction <= 1) || !(connections > 0) || !(noticeTtlS >= 1) || (fixedRate !== null && !(fixedRate >= 1))) {
  console.error('usage: npm run soak -- --minutes N [--fraction 0..1] [--connections N] [--models DIR] [--notice-ttl-s S] [--rate R]');
  process.exit(2);
}

const corpus = ['openrtb-requests.prebid-go.ndjson', 'openrtb-requests.iab-spec.ndjson'].flatMap((f) =>
  readFileSync(join('test/fixtures/corpus', f), 'utf8').trim().split('\n'),
);
// Each connection walks the corpus from its own offset (autocannon cycles `requests` per connection).
const requests = corpus.map((body) => ({ method: 'POST' as const, path: '/openrtb2/bid', headers: { 'content-type': 'application/json' }, body }));

function rssMiB(pid: number): number {
  return (processRssBytes(pid) ?? NaN) / 2 ** 20;
}

function percentile(sorted: number[], p: number): string {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))].toFixed(1) : '-';
}

const dir = mkdtempSync(join(tmpdir(), 'soak-'));
cpSync('policies', join(dir, 'policies'), { recursive: true });
writeFileSync(
  join(dir, 'policies', 'bidder.yaml'),
  `noticeTtlMs: ${noticeTtlS * 1000}\neventLog:\n  dir: ${join(dir, 'events')}\nledger:\n  journalPath: ${join(dir, 'ledger.journal')}\n`,
);
let stopping = false;
const bidder = await spawnBidder({
  policiesDir: join(dir, 'policies'),
  modelsDir: models,
  cli: 'dist/cli.js',
  env: { NOTICE_SECRET: process.env.NOTICE_SECRET ?? 'soak-notice-secret' },
  waitReady: false,
  log: (line) => process.stderr.write(line + '\n'),
});
const child = bidder.child;
let childExited = false;
child.on('exit', (code, signal) => {
  childExited = true;
  if (!stopping) console.error(`soak: the bidder exited during the run (code ${code}, signal ${signal})`);
});
const url = bidder.origin;
const launchRss = rssMiB(child.pid!);
const ready = await fetch(`${url}/readyz`);
console.log(`soak: bidder pid ${child.pid} on ${url}, /readyz ${ready.status}, ${corpus.length} corpus requests, notice TTL ${noticeTtlS} s, RSS ${launchRss.toFixed(1)} MiB`);

function run(opts: autocannon.Options, onResponse?: (status: number, ms: number) => void): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const inst = autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
    if (onResponse) inst.on('response', (_client, status, _bytes, ms) => onResponse(status, ms));
  });
}

// Saturation: as fast as `connections` connections go, 10 s including the model's warm-up.
const sat = await run({ url, connections, duration: 10, requests });
const satRate = sat.requests.average;
const rate = fixedRate ?? Math.max(1, Math.round(satRate * fraction));
console.log(`soak: saturation ${satRate.toFixed(0)} req/s (p50 ${sat.latency.p50} ms, p99 ${sat.latency.p99} ms); soaking at ${rate} req/s for ${minutes} min`);

const started = Date.now();
let window: number[] = [];
let windowStatus5xx = 0;
let total5xx = 0;
const rss: number[] = [rssMiB(child.pid!)];
const heap: number[] = [];
/** V8 heap in use, from the bidder's own /metrics: a leak shows here before RSS, which the allocator keeps. */
async function heapMiB(): Promise<number> {
  try {
    const m = /^nodejs_heap_size_used_bytes (\S+)$/m.exec(await (await fetch(`${url}/metrics`)).text());
    return m ? Number(m[1]) / 2 ** 20 : NaN;
  } catch {
    // A failed scrape (bidder gone or timing out) is a gap in the series; the exit code reports a death.
    return NaN;
  }
}
const report = setInterval(async () => {
  const sorted = window.sort((a, b) => a - b);
  const n = sorted.length;
  const failures = windowStatus5xx;
  window = [];
  windowStatus5xx = 0;
  const mem = childExited ? NaN : rssMiB(child.pid!);
  const h = await heapMiB();
  rss.push(mem);
  heap.push(h);
  console.log(
    `t=${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s  rss ${mem.toFixed(1)} MiB  heap ${h.toFixed(1)} MiB  ` +
      `${(n / (REPORT_EVERY_MS / 1000)).toFixed(0)} req/s  latency p50 ${percentile(sorted, 0.5)} ms p99 ${percentile(sorted, 0.99)} ms max ${percentile(sorted, 1)} ms  5xx ${failures}`,
  );
}, REPORT_EVERY_MS);

const soak = await run({ url, connections, duration: minutes * 60, overallRate: rate, requests }, (status, ms) => {
  window.push(ms);
  if (status >= 500) (windowStatus5xx++, total5xx++);
});
clearInterval(report);

const halves = (xs: number[]) => [xs.slice(0, Math.floor(xs.length / 2)), xs.slice(Math.floor(xs.length / 2))];
const [firstHalf, lastHalf] = halves(rss.slice(1));
const [heapFirst, heapLast] = halves(heap);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
console.log(
  `soak: ${soak.requests.total} requests in ${minutes} min, ${soak.errors} connection errors, ${soak.non2xx} non-2xx (${total5xx} 5xx); ` +
    // autocannon corrects for coordinated omission at a fixed rate: one stall adds many samples.
    `autocannon latency (corrected) p50 ${soak.latency.p50} ms p99 ${soak.latency.p99} ms max ${soak.latency.max} ms`,
);
console.log(
  `soak: RSS at launch ${launchRss.toFixed(1)} MiB, after the saturation burst ${rss[0].toFixed(1)} MiB, mean of first half ${mean(firstHalf).toFixed(1)} MiB, of second half ${mean(lastHalf).toFixed(1)} MiB, max ${Math.max(...rss).toFixed(1)} MiB; ` +
    `V8 heap mean of first half ${mean(heapFirst).toFixed(1)} MiB, of second half ${mean(heapLast).toFixed(1)} MiB`,
);

stopping = true;
const died = childExited;
await bidder.close();
rmSync(dir, { recursive: true, force: true });
process.exit(died || total5xx > 0 || soak.errors > 0 ? 1 : 0);
