// The longest stalls of the issued-bids ring (src/notices/issued.ts) as it fills to its cap: the
// time of each `add` over 2 ms, in order. Run after `npm run build`: node bench/issued-stall.mjs
// What is left over ~10 ms is this script's own garbage collection (it keeps 500,000 id strings).
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const { createIssuedBids } = await import(pathToFileURL(resolve('dist/notices/issued.js')).href);
const N = 500_000;
const issued = createIssuedBids(N, 3_600_000, () => 0);
const rec = { pctr: 0.01, userKey: 'u', categories: [], segment: 's', bidCpmUsd: 1 };
const slow = [];
let worst = 0;
for (let i = 0; i < N; i++) {
  const t = performance.now();
  issued.add(`bid-${i}-abcdefghijkl`, rec);
  const d = performance.now() - t;
  worst = Math.max(worst, d);
  if (d > 2) slow.push(`${i}: ${d.toFixed(1)} ms`);
}
console.log(`${N} adds, longest ${worst.toFixed(1)} ms; over 2 ms: ${slow.join(', ') || 'none'}`);
