/**
 * Event-loop block of the bidder's heavy work: `npm run bench:loop -- [--reloads 20]
 * [--compactions 4] [--journal-mib 64] [--idle-s 5]`.
 *
 * Boots the real bidder (demo policies, shipped models, listening on 127.0.0.1:0), then measures
 * with perf_hooks.monitorEventLoopDelay (1 ms resolution) how late its event loop runs while it
 * does, one kind at a time:
 *   - nothing (the noise floor of this machine: other processes preempt us too),
 *   - model reloads (`bidder.reloadModel`, alternating dcn-v2 and lr-v2, as the admin route does),
 *   - journal compactions of an in-process ledger in the same process, whose journal is filled to
 *     `--journal-mib` (64 MiB is the production trigger) between compactions.
 * For each kind it prints the worst delay of each operation (median, p90, max over the
 * operations), the p99 of all delay samples taken during the work, and the CPU time each
 * operation used. A delay includes the 1 ms timer period, so an idle loop reads about 1 ms.
 * It measures; it does not judge.
 */
import { mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBidder } from '../src/bidder.js';
import { DEFAULT_SETTINGS } from '../src/config/settings.js';
import { createMemoryLedger } from '../src/ledger/memory.js';
import type { Budget } from '../src/types.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const reloads = Number(arg('reloads', '20'));
const compactions = Number(arg('compactions', '4'));
const journalMiB = Number(arg('journal-mib', '64'));
const idleS = Number(arg('idle-s', '5'));
if (!(reloads >= 0) || !(compactions >= 0) || !(journalMiB > 0) || !(idleS >= 0)) {
  console.error('usage: npm run bench:loop -- [--reloads N] [--compactions N] [--journal-mib N] [--idle-s N]');
  process.exit(2);
}

const ms = (ns: number) => ns / 1e6;
const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN);
const fmt = (x: number) => x.toFixed(1).padStart(5);

// Wall-clock delay: how late a 1 ms timer fires. On a shared machine it also counts the time the
// OS ran something else, so it is read next to the idle line.
const hist = monitorEventLoopDelay({ resolution: 1 });
hist.enable();
let all = monitorEventLoopDelay({ resolution: 1 });

// Own block: the same gaps with the time the main thread sat runnable in the run queue taken out
// (Linux schedstat, field 2, ns), so other processes holding the CPU do not count. What remains is
// the thread's own running plus its sleeps between ticks: an idle loop reads about 1 ms.
let statFd = -1;
try {
  statFd = openSync(`/proc/self/task/${process.pid}/schedstat`, 'r');
} catch {
  console.log('loop-block: no /proc/self/task/<pid>/schedstat here; own blocks are not measured');
}
const statBuf = Buffer.alloc(96);
const waitMs = () => Number(statBuf.toString('latin1', 0, readSync(statFd, statBuf, 0, 96, 0)).split(' ')[1]) / 1e6;
let lastWall = performance.now();
let lastWait = statFd >= 0 ? waitMs() : 0;
let gaps: number[] = [];
let opMaxOwn = 0;
let collecting = false;
const tick = setInterval(() => {
  if (statFd < 0) return;
  const wall = performance.now();
  const wait = waitMs();
  const own = wall - lastWall - (wait - lastWait);
  lastWall = wall;
  lastWait = wait;
  if (!collecting) return;
  gaps.push(own);
  if (own > opMaxOwn) opMaxOwn = own;
}, 1);

interface Sample {
  /** Worst wall-clock delay, ms (includes the 1 ms timer period). */
  maxMs: number;
  /** Worst gap between two 1 ms ticks less the main thread's run-queue wait, ms. */
  maxOwnMs: number;
  /** CPU the whole operation used, ms (all threads of the process). */
  cpuMs: number;
}
/** Runs `op` with the histograms reset; its worst delay counts what the loop noticed up to 5 ms after it ended. */
async function measure(op: () => Promise<unknown>): Promise<Sample> {
  await sleep(20);
  hist.reset();
  opMaxOwn = 0;
  collecting = true;
  const cpu0 = process.cpuUsage();
  all.enable();
  await op();
  await sleep(5);
  all.disable();
  collecting = false;
  const cpu = process.cpuUsage(cpu0);
  return { maxMs: ms(hist.max), maxOwnMs: opMaxOwn, cpuMs: (cpu.user + cpu.system) / 1000 };
}

function report(kind: string, samples: Sample[], withAll = true): void {
  const sorted = (f: (s: Sample) => number) => samples.map(f).sort((a, b) => a - b);
  const wall = sorted((s) => s.maxMs);
  const own = sorted((s) => s.maxOwnMs);
  const cpu = sorted((s) => s.cpuMs);
  const g = gaps.sort((a, b) => a - b);
  console.log(
    `${kind.padEnd(24)} n=${String(samples.length).padStart(3)} | own block per op: median ${fmt(pct(own, 0.5))} p90 ${fmt(pct(own, 0.9))} max ${fmt(pct(own, 1))}` +
      (withAll ? `, all ticks p99 ${fmt(pct(g, 0.99))}` : '').padEnd(withAll ? 0 : 20) +
      ` | wall delay per op: median ${fmt(pct(wall, 0.5))} p90 ${fmt(pct(wall, 0.9))} max ${fmt(pct(wall, 1))}` +
      (withAll ? `, all p99 ${fmt(ms(all.percentile(99)))}` : '') +
      ` | CPU per op ${fmt(pct(cpu, 0.5))} (ms)`,
  );
  if (withAll) {
    all = monitorEventLoopDelay({ resolution: 1 });
    gaps = [];
  }
}

const dir = mkdtempSync(join(tmpdir(), 'loop-block-'));
const bidder = await createBidder({
  policiesDir: 'policies',
  watchModels: false,
  overrides: {
    host: '127.0.0.1',
    port: 0,
    logLevel: 'silent',
    noticeSecret: 'loop-block-notice-secret',
    eventLog: { ...DEFAULT_SETTINGS.eventLog, dir: join(dir, 'events') },
    ledger: { ...DEFAULT_SETTINGS.ledger, journalPath: join(dir, 'ledger'), redisUrl: '' },
  },
});
console.log(`loop-block: bidder on ${bidder.url}, ready ${bidder.ready()}; delays from monitorEventLoopDelay (1 ms resolution)`);

// The noise floor: the loop with nothing to do but the bidder's own timers.
if (idleS > 0) {
  const samples: Sample[] = [];
  for (let i = 0; i < idleS * 4; i++) samples.push(await measure(() => sleep(250)));
  report('idle (250 ms windows)', samples);
}

if (reloads > 0) {
  const samples: Sample[] = [];
  for (let i = 0; i < reloads; i++) {
    const version = i % 2 === 0 ? 'lr-v2' : 'dcn-v2';
    samples.push(
      await measure(async () => {
        const r = await bidder.reloadModel(version);
        if (!r.ok) throw new Error(`reload of ${version} refused: ${r.problems.join('; ')}`);
      }),
    );
  }
  report('  lr-v2', samples.filter((_, i) => i % 2 === 0), false);
  report('  dcn-v2', samples.filter((_, i) => i % 2 === 1), false);
  report('model reload', samples);
}

if (compactions > 0) {
  const clock = Date.now;
  const budgets: Record<string, Budget> = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`c${i}`, { dailyUsd: 1e9 }]));
  // Compaction is triggered by hand below; the automatic trigger stays out of the way.
  const ledger = await createMemoryLedger({
    clock,
    budgets,
    reservationTtlMs: 60_000,
    journalDir: join(dir, 'bench-ledger'),
    fsync: false,
    compactAfterBytes: Number.MAX_SAFE_INTEGER,
  });
  // A bid's journal life: a reserve, then a settle (1 in 10), a release (8 in 10) or nothing (expiry).
  let seq = 0;
  const targetBytes = journalMiB * 2 ** 20;
  async function fill(): Promise<number> {
    let bytes = 0;
    while (bytes < targetBytes) {
      const items = Array.from({ length: 64 }, () => {
        const id = `bench-${(seq++).toString(36)}-${'x'.repeat(20)}`;
        return { bidId: id, campaignId: `c${seq % 20}`, amountUsd: 0.002, expiresAtMs: clock() + 30_000 };
      });
      await ledger.reserve(items);
      bytes += 64 * 110;
      for (let k = 0; k < items.length; k++) {
        if (k % 10 === 0) (await ledger.settle(items[k].bidId, 0.001), (bytes += 90));
        else if (k % 10 !== 9) (await ledger.release(items[k].bidId), (bytes += 60));
      }
      if (seq % 8192 < 64) await sleep(0);
    }
    return seq;
  }
  // The fill writes bids ~30x faster than a bidder bids, and its garbage keeps the collector busy
  // for a while after it: each compaction waits for that to settle, and a window of the same
  // length without a compaction, just before it, shows what is left.
  const samples: Sample[] = [];
  const controls: Sample[] = [];
  for (let i = 0; i < compactions; i++) {
    const t0 = performance.now();
    const bids = await fill();
    console.log(`loop-block: journal filled to ~${journalMiB} MiB (${bids} bids so far) in ${((performance.now() - t0) / 1000).toFixed(1)} s; compacting (${ledger.compactor})`);
    await sleep(3000);
    const c0 = performance.now();
    const sample = await measure(() => ledger.compact());
    const took = performance.now() - c0;
    await sleep(3000);
    controls.push(await measure(() => sleep(took)));
    samples.push(sample);
  }
  report(`compaction (${journalMiB} MiB)`, samples);
  report('  same time, no work', controls, false);
  await ledger.close();
}

clearInterval(tick);
await bidder.close();
rmSync(dir, { recursive: true, force: true });
