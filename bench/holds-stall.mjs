// The longest stalls of the ledger's hold table (src/ledger/holds.ts) as it fills to N bids and then
// churns at that plateau (add one bid, delete the oldest), and its cost per operation. Run after
// `npm run build`:
//   node --max-semi-space-size=64 bench/holds-stall.mjs [N=4000000] [churn ops=4000000] [dist=dist] [base dist]
// `dist` is the build whose stalls are timed; a base dist (e.g. a `git worktree` of the base, built)
// has its cost per operation measured in turn with dist's. Ids are made as the
// bidder makes them (createBidIds: a random 8-character prefix and a base-36 sequence) and built in
// blocks of 65,536 outside the timed calls, so the script's own allocation is not timed; a garbage
// collection that still lands inside a timed call is shown beside it ("gc N ms", from
// perf_hooks' gc entries), since the table's Map backing stores are what most of it moves.
import { constants, performance, PerformanceObserver } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

const N = Number(process.argv[2] ?? 4_000_000);
const CHURN = Number(process.argv[3] ?? 4_000_000);
const dist = process.argv[4] ?? 'dist';
const { HoldTable } = await import(pathToFileURL(resolve(dist, 'ledger/holds.js')).href);

const gcs = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) gcs.push([e.startTime, e.duration, e.detail?.kind]); }).observe({ entryTypes: ['gc'] });
/** The gc time that overlapped [t0, t1]; the observer reports late, so this is read at the end. */
function gcIn(t0, t1) {
  let ms = 0;
  for (const [s, d] of gcs) if (s < t1 && s + d > t0) ms += Math.min(t1, s + d) - Math.max(t0, s);
  return ms;
}
const KINDS = { [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor', [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major', [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental', [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak' };
/** The kinds of gc that overlapped [t0, t1]. */
function gcKinds(t0, t1) {
  return [...new Set(gcs.filter(([s, d]) => s < t1 && s + d > t0).map(([, , k]) => KINDS[k] ?? k))].join('+');
}

const prefix = randomBytes(6).toString('base64url');
let seq = 0;
const BLOCK = 65_536;
function block() {
  const ids = new Array(BLOCK);
  for (let i = 0; i < BLOCK; i++) ids[i] = `${prefix}-${(seq++).toString(36)}`;
  return ids;
}
const NOW = 1_796_000_000_000;
const camps = Array.from({ length: 50 }, (_, i) => `camp-${i}`);

/** One phase's figures; the slow calls are resolved against gc here, at the end, as the observer reports late. */
function report(label, n, slow, worst, total) {
  const lines = slow.map(([i, a, b]) => { const g = gcIn(a, b); return `${i}: ${(b - a).toFixed(1)} ms${g > 0.05 ? ` (gc ${g.toFixed(1)} ${gcKinds(a, b)})` : ''}`; });
  const notGc = slow.map(([, a, b]) => b - a - gcIn(a, b));
  console.log(`${label}: ${n} calls, ${(total / n * 1e6).toFixed(0)} ns mean (timer included), longest ${worst.toFixed(1)} ms, longest less gc ${Math.max(0, ...notGc).toFixed(1)} ms; over 2 ms (${slow.length}): ${lines.join(', ') || 'none'}`);
}

/** Times each call: [slow calls as [i, start, end], longest, total]. */
function stats() { return { slow: [], worst: 0, total: 0 }; }
function time(st, i, t0, t1) {
  const d = t1 - t0;
  st.total += d;
  if (d > st.worst) st.worst = d;
  if (d > 2) st.slow.push([i, t0, t1]);
}

function* blocks() { for (;;) yield block(); }

// (a) fill, (b) churn at the plateau. The plateau's ids are kept in a ring so the oldest is known.
const t = new HoldTable();
const ring = new Array(N);
let head = 0;
const fill = stats();
const add = stats();
const del = stats();
const gen = blocks();
let ids = gen.next().value;
for (let i = 0; i < N; i++) {
  const k = i % BLOCK;
  if (k === 0 && i > 0) ids = gen.next().value;
  const t0 = performance.now();
  t.add(ids[k], camps[i % 50], 1000 + i, NOW + 60_000, 20_790, 0, 0, 0);
  time(fill, i, t0, performance.now());
  ring[i] = ids[k];
}
for (let i = 0; i < CHURN; i++) {
  const k = (N + i) % BLOCK;
  if (k === 0) ids = gen.next().value;
  let t0 = performance.now();
  t.delete(ring[head]);
  time(del, i, t0, performance.now());
  t0 = performance.now();
  t.add(ids[k], camps[i % 50], 1000 + i, NOW + 60_000, 20_790, 0, 0, 0);
  time(add, i, t0, performance.now());
  ring[head] = ids[k];
  head = (head + 1) % N;
}
const tEnd = performance.now();
if (t.size !== N) throw new Error(`size ${t.size}, expected ${N}`);

// Cost per operation, untimed call by call, on a fresh table: 1,048,576 adds of ids made just
// before (as a bid's id is), then as many lookups (slot and two column reads) of random earlier
// bids by ids made afresh (as a notice's id is parsed), then deletes of the stored ids, oldest
// first (as retention ends them); in batches of 4,096 with the ids made between batches, untimed.
// Alternates with the table of a second build when one is named.
function perOp(Table) {
  const B = 4096;
  const M = 256 * B;
  const h = new Table();
  const stored = new Array(M);
  const seq0 = seq;
  let add = 0;
  let slot = 0;
  let del = 0;
  let sum = 0;
  for (let b = 0; b < M / B; b++) {
    const ids = new Array(B);
    for (let k = 0; k < B; k++) ids[k] = `${prefix}-${(seq++).toString(36)}`;
    const t0 = performance.now();
    for (let k = 0; k < B; k++) h.add(ids[k], camps[k % 50], 1000 + k, NOW, 20_790, 0, 0, 0);
    add += performance.now() - t0;
    for (let k = 0; k < B; k++) stored[b * B + k] = ids[k];
  }
  const fn = typeof h.a === 'function'; // the columns are methods since the table's chunks, typed arrays before
  for (let b = 0; b < M / B; b++) {
    const ids = new Array(B);
    for (let k = 0; k < B; k++) ids[k] = `${prefix}-${(seq0 + ((Math.random() * M) | 0)).toString(36)}`;
    const t0 = performance.now();
    if (fn) for (let k = 0; k < B; k++) { const s = h.slot(ids[k]); sum += h.a(s) + h.st(s); }
    else for (let k = 0; k < B; k++) { const s = h.slot(ids[k]); sum += h.a[s] + h.st[s]; }
    slot += performance.now() - t0;
  }
  for (let b = 0; b < M / B; b++) {
    const t0 = performance.now();
    for (let k = b * B; k < (b + 1) * B; k++) h.delete(stored[k]);
    del += performance.now() - t0;
  }
  if (h.size !== 0 || !(sum > 0)) throw new Error('per-op check');
  return `add ${(add / M * 1e6).toFixed(0)} ns, slot+read ${(slot / M * 1e6).toFixed(0)} ns, delete ${(del / M * 1e6).toFixed(0)} ns`;
}
const other = process.argv[5] && (await import(pathToFileURL(resolve(process.argv[5], 'ledger/holds.js')).href)).HoldTable;
const costs = [];
const costsOther = [];
for (let r = 0; r < 3; r++) {
  costs.push(perOp(HoldTable));
  if (other) costsOther.push(perOp(other));
}

await new Promise((r) => setTimeout(r, 100));
report(`fill to ${N}`, N, fill.slow, fill.worst, fill.total);
report(`churn at ${N}, add`, CHURN, add.slow, add.worst, add.total);
report(`churn at ${N}, delete`, CHURN, del.slow, del.worst, del.total);
console.log(`gc pauses over the fill and churn: ${gcs.filter(([s]) => s < tEnd).length}, longest ${Math.max(...gcs.filter(([s]) => s < tEnd).map(([, d]) => d)).toFixed(1)} ms, total ${gcs.filter(([s]) => s < tEnd).reduce((n, [, d]) => n + d, 0).toFixed(0)} ms`);
console.log(`per op at 1,048,576 (${dist}, 3 rounds): ${costs.join(' | ')}`);
if (other) console.log(`per op at 1,048,576 (${process.argv[5]}, 3 rounds, alternating): ${costsOther.join(' | ')}`);
