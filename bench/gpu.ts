/**
 * GPU scoring against wasm (issue 16 item 6): rows/s of each model through the compiled ops the
 * bidder scores with, per backend and batch size, plus the JS chain where a model has one; then,
 * with --serve VERSION, the real bidder on each backend that loads, serving the bench's
 * requests under autocannon (--catalog N: over a generated catalog of N campaigns).
 *
 * On a backend whose tensors live on a device (webgpu) the model is read through predictAsync,
 * as the batcher does there. Two figures per batch size: `serial` (one call at a time, what one
 * batch waits) and `pipelined` (--depth calls in flight, what the batcher gets when batches
 * overlap). Scores are checked against the JS chain or the first backend (max |Δ|).
 * Prints a table to stderr and one JSON object to stdout (and to --out). Measures; asserts nothing.
 *
 *   npm run bench:gpu [-- --backends webgpu,wasm --versions lr-v3,dcn-v2 --batches 256,4096 --seconds 1 --serve dcn-v2 --catalog 1000
 *                        --connections 32 --batch-rows 256 --candidates 16]
 */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import autocannon from 'autocannon';
import { loadPolicies } from '../src/config/policies.js';
import { createFeatureBuilder } from '../src/features/features.js';
import { spawnBidder } from '../src/harness/bidder.js';
import { parseSamples } from '../src/harness/prometheus.js';
import { selectBackend, type BackendName } from '../src/model/backend.js';
import { compileArtifacts } from '../src/model/compile.js';
import { wrapCompiled } from '../src/model/ctr-model.js';
import { readModelVersion, resolveModelDir } from '../src/model/store.js';
import { simulatedRows } from '../src/sim/dataset.js';
import type { CtrModel } from '../src/types.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const modelsDir = arg('models', 'models');
const versions = arg('versions', 'lr-v3,dcn-v2').split(',');
const batches = arg('batches', '1,256,4096,16384').split(',').map(Number);
const seconds = Number(arg('seconds', '1'));
const runs = Number(arg('runs', '3'));
const depth = Number(arg('depth', '4'));
const backends = arg('backends', 'webgpu,wasm').split(',') as BackendName[];
const serveVersion = arg('serve', '');
const serveSeconds = Number(arg('serve-seconds', '8'));
const catalog = Number(arg('catalog', '0'));
const connections = Number(arg('connections', '32'));
// Batcher and shortlist settings for the served bidder (defaults: the bidder's own, 256 and 16).
const batchRows = arg('batch-rows', '');
const candidates = arg('candidates', '');
const out = arg('out', '');

const { campaigns } = loadPolicies(arg('policies', 'policies'));
const spec = createFeatureBuilder().spec;
const maxBatch = Math.max(...batches);
const data = simulatedRows({ seed: 77, worldSeed: 1, rows: Math.max(4096, maxBatch), campaigns });
const F = spec.sparseFields;
const D = spec.denseDim;

interface Result {
  backend: string;
  version: string;
  path: 'ops' | 'js';
  batch: number;
  serialRowsPerSec: number;
  serialMsPerCall: number;
  pipelinedRowsPerSec: number | null;
  maxAbsDiff: number;
}
const results: Result[] = [];
const skipped: Record<string, string> = {};
const notes: Record<string, string[]> = {};
const reference = new Map<string, Float32Array>();

/** Scores of the first `rows` rows, for the equality check across backends. */
async function scoresOf(m: CtrModel, rows: number): Promise<Float32Array> {
  const s = data.sparse.subarray(0, rows * F);
  const d = data.dense.subarray(0, rows * D);
  return m.predictAsync ? m.predictAsync(s, d, rows) : m.predict(s, d, rows);
}

async function measure(m: CtrModel, batch: number) {
  const offsets = Math.max(1, Math.floor(data.rows / batch));
  let k = 0;
  const call = () => {
    const o = (k++ % offsets) * batch;
    const s = data.sparse.subarray(o * F, (o + batch) * F);
    const d = data.dense.subarray(o * D, (o + batch) * D);
    return m.predictAsync ? m.predictAsync(s, d, batch) : m.predict(s, d, batch);
  };
  const budgetMs = seconds * 1000;
  const serial = async () => {
    let calls = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < budgetMs) {
      await call();
      calls++;
    }
    const ms = performance.now() - t0;
    return { rowsPerSec: (calls * batch) / (ms / 1000), msPerCall: ms / calls };
  };
  // Keeps `depth` calls in flight: a device overlaps one batch's upload and compute with another's read-back.
  const pipelined = async () => {
    let rows = 0;
    const t0 = performance.now();
    const lane = async () => {
      while (performance.now() - t0 < budgetMs) {
        await call();
        rows += batch;
      }
    };
    await Promise.all(Array.from({ length: depth }, lane));
    return rows / ((performance.now() - t0) / 1000);
  };
  await serial(); // warm-up: shaders and kernels compile, buffer pools fill
  const s = [];
  for (let i = 0; i < runs; i++) s.push(await serial());
  s.sort((a, b) => a.rowsPerSec - b.rowsPerSec);
  const med = s[Math.floor(runs / 2)];
  let pipe: number | null = null;
  if (m.predictAsync) {
    const p = [];
    for (let i = 0; i < runs; i++) p.push(await pipelined());
    pipe = p.sort((a, b) => a - b)[Math.floor(runs / 2)];
  }
  return { serialRowsPerSec: Math.round(med.rowsPerSec), serialMsPerCall: Number(med.msPerCall.toFixed(3)), pipelinedRowsPerSec: pipe === null ? null : Math.round(pipe) };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const checkRows = Math.min(4096, data.rows);
for (const b of backends) {
  try {
    notes[b] = (await selectBackend(b)).notes;
  } catch (err) {
    skipped[b] = (err as Error).message;
    process.stderr.write(`skip ${b}: ${(err as Error).message}\n`);
    continue;
  }
  for (const v of versions) {
    const art = readModelVersion(resolveModelDir(modelsDir, v), spec);
    const compiled = compileArtifacts(art.modelTopology, art.weightSpecs, art.weightData);
    if (!compiled) throw new Error(`${v}: not an architecture the compiled path knows`);
    const paths: ['ops' | 'js', CtrModel][] = [['ops', wrapCompiled({ ...compiled, scores: null }, spec, { version: v, kind: art.kind })]];
    // The JS chain does not touch the backend: measured once, beside the first backend's ops.
    if (compiled.scores && !results.some((r) => r.version === v && r.path === 'js')) paths.push(['js', wrapCompiled(compiled, spec, { version: v, kind: art.kind })]);
    for (const [path, m] of paths) {
      const got = await scoresOf(m, checkRows);
      if (!reference.has(v)) reference.set(v, got);
      const diff = maxAbsDiff(got, reference.get(v)!);
      for (const batch of batches) {
        const r = { backend: path === 'js' ? 'js' : b, version: v, path, batch, ...(await measure(m, batch)), maxAbsDiff: diff };
        results.push(r);
        const pipe = r.pipelinedRowsPerSec === null ? '' : `  pipelined ×${depth} ${String(r.pipelinedRowsPerSec).padStart(10)} rows/s`;
        process.stderr.write(`${r.backend.padEnd(7)} ${v.padEnd(8)} ${path.padEnd(4)} batch ${String(batch).padStart(6)}  ${String(r.serialRowsPerSec).padStart(10)} rows/s  ${r.serialMsPerCall.toFixed(3).padStart(8)} ms/call${pipe}  max|Δ| ${diff.toExponential(1)}\n`);
      }
    }
    compiled.dispose();
  }
}

/** The real bidder on `backend`, serving the workload's requests under autocannon. */
async function serve(backend: string) {
  const workload = (await import(join(process.cwd(), 'bench/workload.mjs'))) as {
    requests: (n: number) => object[];
    writePolicies: (root: string, dir: string, total: number) => void;
    writeCatalog: (root: string, dir: string, catalog: number, seed: number) => Promise<string>;
  };
  // The bench's own policy set: https notices for its secure imps, and with --catalog N a generated
  // catalog (up to 64 candidates per imp), where batches are large enough for a device to matter.
  const dir = mkdtempSync(join(tmpdir(), 'bench-gpu-'));
  workload.writePolicies(process.cwd(), dir, 1000);
  if (catalog > 0) await workload.writeCatalog(process.cwd(), dir, catalog, 1);
  const extra = [batchRows && `batcher: { maxBatchRows: ${batchRows} }`, candidates && `maxCandidatesPerImp: ${candidates}`].filter(Boolean);
  if (extra.length) appendFileSync(join(dir, 'bidder.yaml'), `${extra.join('\n')}\n`);
  const bidder = await spawnBidder({ policiesDir: dir, modelsDir, args: ['--backend', backend, '--model', serveVersion], startTimeoutMs: 120_000 });
  const { requests } = workload;
  try {
    const bodies = requests(2000).map((r) => JSON.stringify(r));
    let i = 0;
    const run = await autocannon({
      url: `${bidder.origin}/openrtb2/bid`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      connections,
      duration: serveSeconds,
      requests: [{ setupRequest: (req) => ({ ...req, body: bodies[i++ % bodies.length] }) }],
    });
    const metrics = parseSamples(await (await fetch(`${bidder.origin}/metrics`)).text());
    // Sums every series of `name` whose labels contain `having` (e.g. 'outcome="bid"').
    const sum = (name: string, having = '') =>
      [...metrics].filter(([k]) => (k === name || k.startsWith(`${name}{`)) && k.includes(having)).reduce((a, [, v]) => a + v, 0);
    const outcomes = Object.fromEntries(['bid', 'nobid', 'invalid'].map((o) => [o, sum('bidder_requests_total', `outcome="${o}"`)]));
    const served = {
      backend,
      version: serveVersion,
      catalog: catalog || 'bench (1000 campaigns, 10 eligible per imp)',
      connections,
      maxBatchRows: Number(batchRows || 256),
      maxCandidatesPerImp: Number(candidates || 16),
      requestsPerSec: Math.round(run.requests.average),
      non2xx: run.non2xx,
      errors: run.errors,
      latencyP99Ms: run.latency.p99,
      outcomes,
      nobidReasons: Object.fromEntries(
        [...metrics].filter(([k, v]) => k.startsWith('bidder_nobid_total{') && v > 0).map(([k, v]) => [/reason="([^"]*)"/.exec(k)?.[1] ?? k, v]),
      ),
      modelInfo: [...metrics].filter(([k, v]) => k.startsWith('bidder_model_info{') && v === 1).map(([k]) => k),
      batches: sum('bidder_model_compute_seconds_count'),
      computeMsPerBatch: (1000 * sum('bidder_model_compute_seconds_sum')) / Math.max(1, sum('bidder_model_compute_seconds_count')),
      rowsPerBatch: sum('bidder_batch_rows_sum') / Math.max(1, sum('bidder_batch_rows_count')),
      droppedRows: sum('bidder_scoring_dropped_rows_total'),
      logProblems: bidder.logProblems,
    };
    process.stderr.write(`serve ${backend} ${serveVersion}: ${JSON.stringify(served)}\n`);
    return served;
  } finally {
    await bidder.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const served = [];
if (serveVersion) for (const b of backends.filter((x) => !(x in skipped))) served.push(await serve(b));
const report = { tfjs: tf.version.tfjs, node: process.version, featureSpec: spec.hash, depth, notes, results, skipped, served };
const line = `${JSON.stringify(report)}\n`;
process.stdout.write(line);
if (out) writeFileSync(out, line);
// Dawn keeps handles open that would hold the process after the bench is done.
process.exit(0);
