// Cost of the value pacer on the request path: multiplier() between slots, and a call that opens a
// slot (a re-solve: Thompson draws and the remaining-day LP). `npm run bench:pacer`; prints, asserts nothing.
import { createThompsonPacer, createValuePacer, mulberry32 } from '../dist/pace/index.js';
let now = Date.UTC(2026, 5, 1);
const p = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 100 } }], slotMs: 1e12 });
const vals = Array.from({ length: 4096 }, (_, i) => 0.5 + (i % 97) / 10);
for (let i = 0; i < 200000; i++) p.multiplier('c', now, { valueCpmUsd: vals[i & 4095], firstPrice: false });
let t = process.hrtime.bigint(); const N = 2_000_000; let s = 0;
for (let i = 0; i < N; i++) s += p.multiplier('c', now, { valueCpmUsd: vals[i & 4095], firstPrice: false });
const perCall = Number(process.hrtime.bigint() - t) / N;
// Re-solve: a pacer whose slot ends at every call.
const q = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 100 } }], slotMs: 1 });
for (let i = 0; i < 5000; i++) { now += 2; q.multiplier('c', now, { valueCpmUsd: vals[i & 4095], firstPrice: i % 2 === 0 }); if (i % 7 === 0) q.onWin('c', 'x', 2, now); else q.onLoss('c', 'x', 1, undefined, now); }
t = process.hrtime.bigint(); const M = 20000;
for (let i = 0; i < M; i++) { now += 2; s += q.multiplier('c', now, { valueCpmUsd: vals[i & 4095], firstPrice: false }); }
const perSolve = Number(process.hrtime.bigint() - t) / M;
// Baseline in the same run: the curve pacer's multiplier between its slots.
const c = createThompsonPacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 100 } }], slotMs: 1e12 });
for (let i = 0; i < 200000; i++) c.multiplier('c', now);
t = process.hrtime.bigint();
for (let i = 0; i < N; i++) s += c.multiplier('c', now, { valueCpmUsd: vals[i & 4095], firstPrice: false });
const curvePerCall = Number(process.hrtime.bigint() - t) / N;
console.log(`curve pacer (baseline) multiplier between slots: ${curvePerCall.toFixed(0)} ns/call`);
console.log(`multiplier between slots: ${perCall.toFixed(0)} ns/call; with a re-solve at every call: ${(perSolve / 1000).toFixed(1)} µs/call`, s > 0);

// Creative calibration on the notice path with a catalog of 3,000 creatives, the clock moving 1 ms
// a notice: each impression and click asks for a refit of the spreads across creatives, which runs
// at most once a second (a pass over every creative won); and the bid path's calibratePctr.
{
  let clock = now;
  const cal = createValuePacer({ clock: () => clock, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 100 } }] });
  const ids = Array.from({ length: 3000 }, (_, i) => `cr${i}`);
  for (const id of ids) cal.calibratePctr(id, 0.01);
  for (let i = 0; i < 300_000; i++) { clock++; cal.onWin('c', ids[i % 3000], 1, clock, 0.01); if (i % 50 === 0) cal.onClick('c', ids[(i * 7) % 3000], clock); }
  t = process.hrtime.bigint(); const K = 200_000;
  for (let i = 0; i < K; i++) { clock++; cal.onWin('c', ids[i % 3000], 1, clock, 0.01); }
  const perWin = Number(process.hrtime.bigint() - t) / K;
  t = process.hrtime.bigint(); const L = 20_000;
  for (let i = 0; i < L; i++) { clock += 10; cal.onClick('c', ids[(i * 7) % 3000], clock); }
  const perClick = Number(process.hrtime.bigint() - t) / L;
  t = process.hrtime.bigint();
  for (let i = 0; i < K; i++) s += cal.calibratePctr(ids[i % 3000], 0.01);
  const perPrice = Number(process.hrtime.bigint() - t) / K;
  console.log(`calibration, 3,000 creatives: onWin ${perWin.toFixed(0)} ns, onClick ${perClick.toFixed(0)} ns (refits included), calibratePctr ${perPrice.toFixed(0)} ns`, s > 0);
}
