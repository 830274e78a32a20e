/**
 * CTR model scoring throughput: rows/s by backend, model version and batch size, through the same
 * CtrModel.predict the bidder calls. Rows are real feature rows from a simulated day. Each figure is
 * the median of several timed runs, with the spread printed beside it as the noise to read it by.
 * Prints a table to stderr and one JSON object to stdout. Measures; asserts nothing.
 *
 *   npm run bench:model [-- --versions lr-v3,dcn-v2 --batches 1,32,256,1024 --seconds 1]
 */
import * as tf from '@tensorflow/tfjs';
import { loadPolicies } from '../src/config/policies.js';
import { createFeatureBuilder } from '../src/features/features.js';
import { selectBackend, type BackendName } from '../src/model/backend.js';
import { loadModel, resolveModelDir } from '../src/model/store.js';
import { simulatedRows } from '../src/sim/dataset.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const modelsDir = arg('models', 'models');
const versions = [...new Set(arg('versions', 'lr-v3,dcn-v2').split(','))];
const batches = arg('batches', '1,32,256,1024').split(',').map(Number);
const seconds = Number(arg('seconds', '1'));
const runs = Number(arg('runs', '3'));
const backends = arg('backends', 'tensorflow,wasm,cpu').split(',') as BackendName[];

const { campaigns } = loadPolicies(arg('policies', 'policies'));
const spec = createFeatureBuilder().spec;
const data = simulatedRows({ seed: 77, worldSeed: 1, rows: 4096, campaigns });

interface Result {
  backend: string;
  version: string;
  batch: number;
  rowsPerSec: number;
  minRowsPerSec: number;
  maxRowsPerSec: number;
}
const results: Result[] = [];
const skipped: Record<string, string> = {};

for (const b of backends) {
  try {
    await selectBackend(b);
  } catch (err) {
    skipped[b] = (err as Error).message;
    process.stderr.write(`skip ${b}: ${(err as Error).message}\n`);
    continue;
  }
  for (const v of versions) {
    const model = await loadModel(resolveModelDir(modelsDir, v), { spec });
    for (const batch of batches) {
      // The pure-JS backend is ~10x slower; shorter runs keep the bench quick without changing its figure.
      const budgetMs = (b === 'cpu' ? seconds / 4 : seconds) * 1000;
      const offsets = Math.floor(data.rows / batch);
      const run = () => {
        let rows = 0;
        let k = 0;
        const t0 = performance.now();
        while (performance.now() - t0 < budgetMs) {
          const o = (k++ % offsets) * batch;
          model.predict(data.sparse.subarray(o * spec.sparseFields), data.dense.subarray(o * spec.denseDim), batch);
          rows += batch;
        }
        return rows / ((performance.now() - t0) / 1000);
      };
      run(); // warm-up: kernels compile and memory pools fill on first use
      const rates = Array.from({ length: runs }, run).sort((x, y) => x - y);
      const r = { backend: b, version: v, batch, rowsPerSec: Math.round(rates[Math.floor(runs / 2)]), minRowsPerSec: Math.round(rates[0]), maxRowsPerSec: Math.round(rates[runs - 1]) };
      results.push(r);
      process.stderr.write(`${b.padEnd(10)} ${v.padEnd(22)} batch ${String(batch).padStart(5)}  ${String(r.rowsPerSec).padStart(9)} rows/s  (${r.minRowsPerSec}..${r.maxRowsPerSec})\n`);
    }
    model.dispose();
  }
}
process.stdout.write(`${JSON.stringify({ tfjs: tf.version.tfjs, node: process.version, featureSpec: spec.hash, results, skipped })}\n`);
