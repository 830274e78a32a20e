#!/usr/bin/env node
// npm run bench [-- --duration S --warmup S --connections N --base REF --rounds N --campaigns N | --catalog N --seed S | --corpus | --profile | --perf]
//
// --catalog N: serve a generated catalog of N campaigns (`bidder catalog --campaigns N --seed S`:
// varied targeting, every media type, so up to 64 candidates per imp) instead of the default one
// (--campaigns N of which 10 are eligible per imp).
// Server CPU per bid request and latency under autocannon, for: the empty uWebSockets.js handler
// (the floor), the head build (twice: the second run shows the noise), and optionally a base git
// ref built in a worktree — all in the same run on the same machine. Also: the per-stage
// breakdown from the head's own histograms, and the raw batched-inference cost of the same rows
// measured alone. A first bidder run is thrown away; the targets line judges the median of head's
// runs. Prints figures; asserts nothing.
// --corpus: send the real requests of test/fixtures/corpus (1,780 of them: Prebid Server's adapter
// fixtures and the IAB spec's examples, every shape they come in) instead of the bench's 2,000
// generated one-imp banner requests, to the floor and to every bidder run alike; what the issue's
// target is stated on. With the default catalog few of them find a campaign: pair it with
// --catalog N (every media type and many sizes).
// --warmup S (default 2): seconds of requests each process is sent before its measured run, thrown
// away. Real requests keep V8's compiler threads busy for tens of seconds (on the corpus's with
// 1,000 campaigns, 77 us of CPU per request on threads other than the main one in the first 8 s,
// 17 by the sixth 8 s): a longer warm-up measures the steady state a serving process lives in.
// --notices N (default 5000): CPU per notice over N notices, after --notice-warmup N (default 5000;
// 0: none) thrown away, as the bid requests' warm-up is (a process's first notices also pay the
// notice path's compilation and one-time set-ups).
// --rounds N (with --base): head and base alternate N times (head-base, base-head, ...) and their
// medians and ranges are compared; on a shared host one run each moves by ±10-15 %, more than many changes are worth.
// --profile: instead, run head once under `node --cpu-prof` and print where its CPU goes (self time
// by function and by source file); the .cpuprofile is kept for Chrome DevTools. V8's profiler
// samples on wall time: a thread descheduled inside a native call (a write, a send) keeps being
// charged to it, which on a host shared with the load generator overstates those calls (the
// event log's fs.write read 11 µs/req there, ~0.4 µs/req by its syscall count).
// --perf: instead, sample head on CPU with Linux `perf` (every thread; kernel, V8 and native code
// included) and print where its CPU goes by area and by symbol, per bid request and then per notice
// (the notices phase recorded apart); needs `perf` on the PATH.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, existsSync, mkdirSync, symlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { spawnBidder } from '../dist/harness/bidder.js';
import { clickUrlFrom } from '../dist/harness/exchange.js';
import { histogramQuantile, parseSamples } from '../dist/harness/prometheus.js';
import { corpusRequests, eachPathOnce, requests, spreadBodies, writeCatalog, writePolicies } from './workload.mjs';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '32' },
    base: { type: 'string' },
    campaigns: { type: 'string', default: '1000' },
    out: { type: 'string', default: 'bench/results/latest.json' },
    models: { type: 'string', default: 'models' },
    profile: { type: 'boolean', default: false },
    perf: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '1' },
    catalog: { type: 'string' },
    corpus: { type: 'boolean', default: false },
    seed: { type: 'string', default: '1' },
    notices: { type: 'string', default: '5000' },
    'notice-warmup': { type: 'string', default: '5000' },
  },
});
const DURATION = Number(args.duration);
const CONNECTIONS = Number(args.connections);
/** Seconds of the 70 % step left out of its p99 (autocannon's start; see runBidder). */
const AT70_SKIP_S = 2;
/** Notices sent (and not measured) before the measured phase: `--notice-warmup N`, 0 for none. */
const NOTICE_WARMUP = Number(args['notice-warmup']);
const ROOT = resolve('.');
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

function cpuTicks(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

/** CPU ticks per thread of a process, by thread id: which threads the process's CPU is spent on. */
function threadTicks(pid) {
  const out = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = f.slice(f.indexOf('(') + 1, f.lastIndexOf(')'));
      const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
      out.set(tid, { name: tid === String(pid) ? 'main' : name, ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

/** µs per request by thread name (threads of one name summed), largest first. */
function byThread(before, after, requests) {
  const sums = new Map();
  for (const [tid, a] of after) {
    const d = a.ticks - (before.get(tid)?.ticks ?? 0);
    sums.set(a.name, (sums.get(a.name) ?? 0) + d);
  }
  return Object.fromEntries([...sums].filter(([, t]) => t > 0).sort((x, y) => y[1] - x[1]).map(([n, t]) => [n, +(((t / CLK_TCK) * 1e6) / requests).toFixed(1)]));
}

function startChild(cmd, argv, cwd, env, portFrom) {
  return new Promise((resolvePort, reject) => {
    const child = spawn(cmd, argv, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    const onData = (d) => {
      buf += d;
      const port = portFrom(buf);
      if (port) {
        child.stdout.off('data', onData);
        resolvePort({ child, port });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => (buf += d));
    child.on('exit', (code) => reject(new Error(`${cmd} ${argv.join(' ')} exited ${code}: ${buf.slice(-2000)}`)));
  });
}


async function measure(name, url, bodies) {
  const warm = await autocannon({ url, connections: CONNECTIONS, duration: Number(args.warmup), ...spreadBodies(bodies, CONNECTIONS) });
  void warm;
  return async (pid) => {
    const t0 = cpuTicks(pid);
    const th0 = threadTicks(pid);
    const res = await autocannon({ url, connections: CONNECTIONS, duration: DURATION, ...spreadBodies(bodies, CONNECTIONS) });
    const ticks = cpuTicks(pid) - t0;
    const th1 = threadTicks(pid);
    const total = res.requests.total;
    const codes = res.statusCodeStats ?? {};
    return {
      name,
      requests: total,
      rps: Math.round(res.requests.average),
      p50Ms: res.latency.p50,
      p99Ms: res.latency.p99,
      cpuUsPerReq: +(((ticks / CLK_TCK) * 1e6) / total).toFixed(1),
      cpuUsPerReqByThread: byThread(th0, th1, total),
      bidRate: total ? +((codes['200']?.count ?? 0) / total).toFixed(3) : 0,
      // non2xx counts statuses outside 200-299, so a 204 no-bid is not an error here.
      errors: res.errors + res.timeouts + res.non2xx,
    };
  };
}

async function runBidder(name, cwd, policiesDir, bodies) {
  // Every run starts from nothing spent and nothing learnt: the ledger journal (and the learned
  // state beside it) of the run before would otherwise carry its spend over, and a generated
  // catalog's budgets, spent by the first runs, left the later ones answering mostly no-bids.
  rmSync(join(policiesDir, 'ledger'), { recursive: true, force: true });
  // Each version serves its own models: a base from before a feature-spec change refuses head's.
  const { child, port } = await spawnBidder({ cli: join(cwd, 'dist/cli.js'), cwd, policiesDir, modelsDir: resolve(cwd, args.models), env: { NOTICE_SECRET: 'bench-secret-0123456789abcdef' }, waitReady: false, killOnSignal: false });
  try {
    const url = `http://127.0.0.1:${port}/openrtb2/bid`;
    const run = await measure(name, url, bodies);
    const before = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const r = await run(child.pid);
    const after = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    r.stagesUs = stageBreakdown(before, after);
    r.meanBatchRows = +ratio(after, before, 'bidder_batch_rows_sum', 'bidder_batch_rows_count').toFixed(1);
    // Rows the model actually scored per bid request answered (no-bids before scoring count as 0).
    r.rowsPerReq = +((sample(after, 'bidder_batch_rows_sum') - sample(before, 'bidder_batch_rows_sum')) / r.requests).toFixed(2);
    // Per request that reached scoring (a no-bid before it scores nothing): the batch one request
    // alone would make, for the micro-batching comparison.
    const scored = sample(after, 'bidder_stage_duration_seconds_count{stage="score"}') - sample(before, 'bidder_stage_duration_seconds_count{stage="score"}');
    r.rowsPerScoredReq = scored > 0 ? +((sample(after, 'bidder_batch_rows_sum') - sample(before, 'bidder_batch_rows_sum')) / scored).toFixed(2) : undefined;
    if (Number(args.notices) > 0) {
      // A notices phase thrown away first, as the bid requests' warm-up is: the process's first
      // notices run the notice path's code unoptimised and pay its compilation (on V8's threads) and
      // one-time set-ups, which over a phase of 5,000 notices read as ~40 µs of CPU per notice.
      await measureNotices(url, child.pid, bodies, NOTICE_WARMUP, () => {}, 'warm');
      r.notices = await measureNotices(url, child.pid, bodies, Number(args.notices));
    }
    // Tail latency where a bidder should run: a fixed offered rate at 70 % of the throughput just
    // reached (the issue's p99 target is stated there, not at saturation). Not paced within the
    // second: autocannon's `overallRate` is a per-second allowance per connection, each sending its
    // share as fast as it is answered and then waiting for the next second (a server capped at
    // 2,609 req/s, offered 1,826, took 1,234-2,963 req/s through the second's first 800 ms and almost nothing in
    // the last 200), so the p99 is of bursts at about saturation speed, harsher than paced arrivals
    // (`npm run loadtest` paces them).
    // The server's own latency histogram gives its p99 (arrival to answer); the client's figure
    // also holds autocannon's rate-limiter queueing.
    // Read from AT70_SKIP_S after the first answer: autocannon builds each connection's 2,000
    // requests first (~1.6 s), each connection's per-second allowance timer starting as it is
    // built, so the first second of sending carried 1.5-1.7 x the rate (the first 300 ms at
    // 7,000-14,600 req/s): 89-99 % of the step's answers over 10 ms were in it.
    const rate = Math.max(1, Math.round(r.rps * 0.7));
    const run70 = autocannon({ url, connections: CONNECTIONS, duration: DURATION + AT70_SKIP_S, overallRate: rate, ...spreadBodies(bodies, CONNECTIONS) });
    let h0p = null;
    run70.once('response', () => (h0p = new Promise((res) => setTimeout(res, AT70_SKIP_S * 1000)).then(async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text())));
    const fixed = await run70;
    const h0 = await h0p;
    const h1 = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    r.at70 = { offeredRps: rate, rps: Math.round(fixed.requests.average), clientP99Ms: fixed.latency.p99, serverP50Ms: serverQuantile(h0, h1, 0.5), serverP99Ms: serverQuantile(h0, h1, 0.99) };
    return r;
  } finally {
    child.kill('SIGKILL');
  }
}

/**
 * Server CPU per notice: bids are collected first (fresh bid requests, answers read), then their
 * win, billing, click and loss notices are sent once each under autocannon (a plan like the load
 * test's: 30 % of bids won, 90 % of wins billed, 5 % clicked, the rest lost), and the bidder's CPU
 * over that phase is divided by the notices answered. Each URL is sent once: a repeat is refused
 * early as a replay and would flatter the figure.
 */
async function measureNotices(url, pid, bodies, wanted, onSend = () => {}, tag = 'notice') {
  const origin = new URL(url).origin;
  const paths = [];
  let s = 7;
  const r = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const local = (u) => {
    const x = new URL(u);
    return x.pathname + x.search;
  };
  let next = 0;
  async function worker() {
    while (paths.length < wanted + CONNECTIONS && next < bodies.length * 10) {
      const body = JSON.parse(bodies[next++ % bodies.length]);
      body.id = `${tag}-${next}`;
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (res.status !== 200) {
        await res.arrayBuffer();
        continue;
      }
      for (const sb of (await res.json()).seatbid ?? []) {
        for (const b of sb.bid ?? []) {
          const clearing = (b.price * (0.5 + 0.5 * r())).toFixed(4);
          if (r() < 0.3) {
            // A video or audio bid has no nurl unless the exchange asks for one (vastNurl): its billing notice reports the win.
            if (b.nurl) paths.push(local(b.nurl.replace('${AUCTION_PRICE}', clearing)));
            if (b.burl && (!b.nurl || r() < 0.9)) paths.push(local(b.burl.replace('${AUCTION_PRICE}', clearing)));
            // The markup escapes '&' (&#38; in banner HTML): clickUrlFrom undoes every form, as an exchange's page would.
            const click = clickUrlFrom(b.adm);
            if (click && r() < 0.05) paths.push(local(click));
          } else if (b.lurl) {
            paths.push(local(b.lurl.replace('${AUCTION_LOSS}', '102').replace('${AUCTION_MIN_TO_WIN}', (b.price * 1.1).toFixed(4))));
          }
        }
      }
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker));
  if (paths.length <= CONNECTIONS) return null;
  onSend();
  const amount = paths.length - CONNECTIONS;
  const t0 = cpuTicks(pid);
  const th0 = threadTicks(pid);
  const ms0 = performance.now();
  // The window ends at the last answer: autocannon resolves at its next 1-second sample tick
  // (its `duration` and `requests.average` too), and the idle time until then, ~0.7 s of a 1.3 s
  // phase, was counted in the CPU and the rate (a bidder at rest uses ~47 ms of CPU a second).
  let answered = 0;
  let end = null;
  const run = autocannon({ url: origin, connections: CONNECTIONS, amount, ...eachPathOnce(paths) });
  run.on('response', () => {
    if (++answered === amount) end = { ticks: cpuTicks(pid), th: threadTicks(pid), ms: performance.now() };
  });
  const res = await run;
  end ??= { ticks: cpuTicks(pid), th: threadTicks(pid), ms: performance.now() };
  const n = res.requests.total;
  const codes = res.statusCodeStats ?? {};
  const accepted = Object.entries(codes).filter(([c]) => Number(c) < 400).reduce((a, [, v]) => a + v.count, 0);
  return { notices: n, accepted, rps: Math.round(n / ((end.ms - ms0) / 1000)), cpuUsPerNotice: +((((end.ticks - t0) / CLK_TCK) * 1e6) / n).toFixed(1), cpuUsPerNoticeByThread: byThread(th0, end.th, n) };
}

/** Upper bound (ms) of the histogram bucket holding quantile q of the requests between two scrapes. */
function serverQuantile(before, after, q) {
  return histogramQuantile([after], 'bidder_request_duration_seconds', q, { labels: { exchange: 'default' }, before: [before], within: 'upper' }) * 1000;
}

function sample(text, name) {
  return parseSamples(text).get(name) ?? 0;
}
function ratio(after, before, sum, count) {
  const c = sample(after, count) - sample(before, count);
  return c ? (sample(after, sum) - sample(before, sum)) / c : 0;
}
function stageBreakdown(before, after) {
  const out = {};
  for (const s of ['decode', 'validate', 'eligibility', 'features', 'score', 'price', 'reserve', 'respond']) {
    const r = ratio(after, before, `bidder_stage_duration_seconds_sum{stage="${s}"}`, `bidder_stage_duration_seconds_count{stage="${s}"}`);
    out[s] = +(r * 1e6).toFixed(1);
  }
  return out;
}

async function inferenceFloor(rowsPerBatch) {
  const { selectBackend } = await import(join(ROOT, 'dist/model/backend.js'));
  const { loadModel, resolveModelDir } = await import(join(ROOT, 'dist/model/store.js'));
  const { createFeatureBuilder } = await import(join(ROOT, 'dist/features/features.js'));
  const { loadPolicies } = await import(join(ROOT, 'dist/config/policies.js'));
  const { createMarket } = await import(join(ROOT, 'dist/sim/market.js'));
  const { showImpressions } = await import(join(ROOT, 'dist/sim/dataset.js'));
  await selectBackend('wasm');
  const model = await loadModel(resolveModelDir(resolve(args.models)));
  const rows = Math.max(1, Math.round(rowsPerBatch));
  // Rows of a held-out simulated day on the demo catalog (seed 1001, as `eval` scores), so that
  // their ids are ones the model saw or meets as served. Synthetic ids ((i × 7919) mod buckets),
  // as before, are unseen in every field: a model with the unseen-value rule (lr-v5) then adjusts
  // every field of every row, its slowest case, 0.66 µs a row against 0.21 (session 37).
  const campaigns = loadPolicies(join(ROOT, 'policies')).campaigns;
  const builder = createFeatureBuilder();
  const market = createMarket({ seed: 1001, worldSeed: 1, campaigns, requestsPerDay: Math.max(2000, rows * 20), profile: 'demo' });
  const { sparse, dense } = builder.allocate(rows);
  let made = 0;
  for (const s of showImpressions({ market, campaigns, builder, maxImpressions: rows })) builder.writeRow(s.ctx, s.prepared, s.profile, sparse, dense, made++);
  if (made !== rows) throw new Error(`inference rows: the simulated day gave ${made} of ${rows}`);
  for (let i = 0; i < 50; i++) model.predict(sparse, dense, rows);
  const cpu0 = process.cpuUsage();
  let n = 0;
  const until = performance.now() + 2000;
  while (performance.now() < until) (model.predict(sparse, dense, rows), n++);
  const cpu = process.cpuUsage(cpu0);
  return { batchRows: rows, cpuUsPerRow: +((cpu.user + cpu.system) / (n * rows)).toFixed(2), model: model.version };
}

/** Head under load with `--cpu-prof`: self time per function and per source file, top first. */
async function profileHead(policiesDir, bodies) {
  const profDir = resolve('bench/results/profile');
  rmSync(profDir, { recursive: true, force: true });
  const spawnedAt = Date.now();
  const { child, port } = await spawnBidder({ nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`], cli: join(ROOT, 'dist/cli.js'), cwd: ROOT, policiesDir, modelsDir: args.models, env: { NOTICE_SECRET: 'bench-secret-0123456789abcdef' }, waitReady: false, killOnSignal: false });
  const exited = new Promise((done) => child.once('exit', done));
  const run = await measure('head (profiled)', `http://127.0.0.1:${port}/openrtb2/bid`, bodies);
  // Only samples of the measured run count: start-up (policy YAML, module loading) and warm-up are cut.
  const fromUs = (Date.now() - spawnedAt) * 1000;
  const r = await run(child.pid);
  const toUs = (Date.now() - spawnedAt) * 1000;
  // The notice path, profiled apart: the window of the notices phase only (bids collected before it are cut).
  let noticeWindow = null;
  if (Number(args.notices) > 0) {
    const url = `http://127.0.0.1:${port}/openrtb2/bid`;
    const started = { at: 0 };
    await measureNotices(url, child.pid, bodies, NOTICE_WARMUP, () => {}, 'warm');
    const n = await measureNotices(url, child.pid, bodies, Number(args.notices), () => (started.at = (Date.now() - spawnedAt) * 1000));
    if (n) noticeWindow = { fromUs: started.at, toUs: (Date.now() - spawnedAt) * 1000, n };
  }
  child.kill('SIGTERM'); // a clean exit writes the profile
  await exited;
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  const prof = JSON.parse(readFileSync(join(profDir, file), 'utf8'));
  const report = (title, from, to, count) => {
    const dt = new Map();
    let t = 0;
    for (let i = 0; i < prof.samples.length; i++) {
      t += prof.timeDeltas[i] ?? 0;
      if (t >= from && t <= to) dt.set(prof.samples[i], (dt.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0));
    }
    const total = [...dt.values()].reduce((a, b) => a + b, 0);
    const byFn = new Map();
    const byFile = new Map();
    for (const node of prof.nodes) {
      const us = dt.get(node.id) ?? 0;
      if (!us) continue;
      const { functionName, url, lineNumber } = node.callFrame;
      const src = url ? url.replace(/^file:\/\//, '').replace(ROOT + '/', '').replace(/^.*node_modules\//, 'node_modules/') : '';
      const fn = `${functionName || '(anonymous)'} ${src ? `${src}:${lineNumber + 1}` : ''}`.trim();
      byFn.set(fn, (byFn.get(fn) ?? 0) + us);
      const area = src ? src.split('/').slice(0, src.startsWith('node_modules/@') ? 3 : 2).join('/') : functionName;
      byFile.set(area, (byFile.get(area) ?? 0) + us);
    }
    const top = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => `${((us / total) * 100).toFixed(1).padStart(5)} %  ${(us / count).toFixed(1).padStart(6)} µs/${title}  ${k}`);
    console.log(`\nby area (${title}s):`);
    for (const l of top(byFile, 20)) console.log(l);
    console.log(`\nby function (self time, ${title}s):`);
    for (const l of top(byFn, 40)) console.log(l);
    return total;
  };
  const total = report('req', fromUs, toUs, r.requests);
  console.log(`\nprofile of head: ${r.requests} requests, ${r.rps} req/s, ${r.cpuUsPerReq} µs CPU/req; sampled ${(total / 1e6).toFixed(1)} s of the measured run (the profiler adds its own overhead)`);
  if (noticeWindow) {
    const nt = report('notice', noticeWindow.fromUs, noticeWindow.toUs, noticeWindow.n.notices);
    console.log(`\nprofile of the notices phase: ${noticeWindow.n.notices} notices sent once each, ${noticeWindow.n.cpuUsPerNotice} µs CPU/notice; sampled ${(nt / 1e6).toFixed(1)} s`);
  }
  console.log(`\nprofile: ${join(profDir, file)}`);
}

/** Where a perf sample's CPU went: the JS file of a JIT frame, or the part of the runtime a native symbol belongs to. */
function perfArea(dso, sym) {
  if (sym.startsWith('JS:')) {
    const url = /file:\/\/(\S+?):\d+:\d+$/.exec(sym)?.[1];
    return url ? `JS ${url.replace(ROOT + '/', '').replace(/^.*node_modules\//, 'node_modules/').split('/').slice(0, 2).join('/')}` : 'JS (node internals)';
  }
  if (dso.includes('kernel')) return 'kernel (sockets, epoll, futex, page faults)';
  if (dso.startsWith('uws_')) return 'uWebSockets.js';
  if (dso.startsWith('libc')) return 'libc (memcpy, malloc, syscall stubs)';
  if (dso === 'node') {
    if (/Json|StringTable|InternalizeString/.test(sym)) return 'V8 JSON.parse and string internalising';
    if (/Scaveng|Marking|Sweep|Evacuat|Heap::|GCTracer|MemoryAllocator|RecordWrite/.test(sym)) return 'V8 garbage collector';
    if (/OrderedHash|MapPrototype|SetPrototype/.test(sym)) return 'V8 Map and Set';
    if (/Promise|Microtask|AsyncFunction|Await/.test(sym)) return 'V8 promises and microtasks';
    if (/compiler::|Compile|Maglev|Turbofan/.test(sym)) return 'V8 compilers';
    if (/crypto|sha\d|HMAC|EVP_/i.test(sym)) return 'OpenSSL (HMAC, hashes)';
    return 'V8 and Node, other';
  }
  return dso;
}

/**
 * Keeps only the newest of the JIT map's entries that overlap: V8 reuses the code space of
 * collected functions, the map is append-only, and perf names an address by its first entry (a
 * sample in the ledger's `reserve` read as the YAML loader's `toJSON`, compiled there at start-up).
 */
function newestPerfMap(file) {
  if (!existsSync(file)) return;
  const entries = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => {
    const [start, size] = line.split(' ', 2);
    return { from: Number.parseInt(start, 16), to: Number.parseInt(start, 16) + Number.parseInt(size, 16), line };
  });
  const kept = [];
  const taken = []; // [from, to) of the kept entries, sorted by from
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i];
    let lo = 0;
    let hi = taken.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (taken[mid][0] < e.to) lo = mid + 1;
      else hi = mid;
    }
    // taken[lo - 1] is the last kept entry starting before e ends: e overlaps it if it ends after e starts.
    if (lo > 0 && taken[lo - 1][1] > e.from) continue;
    taken.splice(lo, 0, [e.from, e.to]);
    kept.push(e.line);
  }
  writeFileSync(file, kept.reverse().join('\n') + '\n');
}

/** Head under load, sampled on CPU by Linux perf: by area and by symbol, in µs per request; then the notices phase apart, per notice. */
async function perfHead(policiesDir, bodies) {
  try {
    execFileSync('perf', ['--version'], { stdio: 'ignore' });
  } catch {
    console.error('bench --perf: `perf` is not on the PATH (Debian: apt-get install linux-perf)');
    process.exit(2);
  }
  mkdirSync(resolve('bench/results'), { recursive: true });
  const { child, port } = await spawnBidder({ nodeArgs: ['--perf-basic-prof-only-functions'], cli: join(ROOT, 'dist/cli.js'), cwd: ROOT, policiesDir, modelsDir: args.models, env: { NOTICE_SECRET: 'bench-secret-0123456789abcdef' }, waitReady: false, killOnSignal: false });
  const url = `http://127.0.0.1:${port}/openrtb2/bid`;
  const record = (data) => {
    const rec = spawn('perf', ['record', '-q', '-F', '999', '-g', '-p', String(child.pid), '-o', data], { stdio: 'ignore' });
    return async () => {
      rec.kill('SIGINT');
      await new Promise((done) => rec.once('exit', done));
    };
  };
  const reqData = resolve('bench/results/perf.data');
  const noticeData = resolve('bench/results/perf-notices.data');
  let r;
  let n = null;
  try {
    const run = await measure('head (perf)', url, bodies);
    const stop = record(reqData);
    r = await run(child.pid);
    await stop();
    if (Number(args.notices) > 0) {
      await measureNotices(url, child.pid, bodies, NOTICE_WARMUP, () => {}, 'warm');
      // Recorded from the first notice sent: the bids the phase collects first are cut.
      let stopNotices = null;
      n = await measureNotices(url, child.pid, bodies, Number(args.notices), () => (stopNotices = record(noticeData)));
      await stopNotices?.();
    }
  } finally {
    child.kill('SIGTERM');
  }
  // The JIT map is read while the process's last code is still named in it.
  newestPerfMap(`/tmp/perf-${child.pid}.map`);
  perfReport(reqData, r.cpuUsPerReq, 'req');
  console.log(`\nperf of head: ${r.requests} requests, ${r.rps} req/s, ${r.cpuUsPerReq} µs CPU/req (by thread ${JSON.stringify(r.cpuUsPerReqByThread)}); the shares above are of that CPU. perf.data: ${reqData} (perf report -i ${reqData})`);
  if (n) {
    perfReport(noticeData, n.cpuUsPerNotice, 'notice');
    console.log(`\nperf of the notices phase: ${n.notices} notices sent once each (${n.accepted} accepted), ${n.rps}/s, ${n.cpuUsPerNotice} µs CPU/notice (by thread ${JSON.stringify(n.cpuUsPerNoticeByThread)}); perf.data: ${noticeData}`);
  }
  rmSync(`/tmp/perf-${child.pid}.map`, { force: true });
}

/** One perf recording's CPU by area and by symbol, in µs per `unit` (its shares of `cpuUs`). */
function perfReport(data, cpuUs, unit) {
  const rows = execFileSync('perf', ['report', '-i', data, '--stdio', '--no-children', '-g', 'none', '--sort', 'dso,sym', '-t', ';'], { maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] })
    .toString()
    .split('\n')
    .filter((l) => /^\s*[\d.]+%/.test(l))
    .map((l) => {
      const [pct, dso, sym] = l.split(';');
      return { share: Number.parseFloat(pct) / 100, dso: dso.trim(), sym: sym.trim().replace(/^\[[.k]\]\s*/, '') };
    });
  const us = (share) => (share * cpuUs).toFixed(1).padStart(6);
  const areas = new Map();
  for (const x of rows) areas.set(perfArea(x.dso, x.sym), (areas.get(perfArea(x.dso, x.sym)) ?? 0) + x.share);
  console.log(`\nby area (${unit}s; every thread, on CPU):`);
  for (const [k, v] of [...areas].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${(v * 100).toFixed(1).padStart(5)} %  ${us(v)} µs/${unit}  ${k}`);
  console.log(`\nby symbol (${unit}s, self):`);
  for (const x of rows.slice(0, 40)) console.log(`${(x.share * 100).toFixed(1).padStart(5)} %  ${us(x.share)} µs/${unit}  ${x.sym.replace('file://' + ROOT + '/', '')}`);
}

function buildBase(ref) {
  const sha = execFileSync('git', ['rev-parse', '--short', ref]).toString().trim();
  const dir = join(tmpdir(), `bidder-bench-base-${sha}`);
  if (!existsSync(join(dir, 'dist/cli.js'))) {
    rmSync(dir, { recursive: true, force: true });
    execFileSync('git', ['worktree', 'add', '--detach', '--force', dir, ref], { stdio: 'ignore' });
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: dir, stdio: 'ignore' });
  }
  return { dir, sha };
}

const work = mkdtempSync(join(tmpdir(), 'bidder-bench-'));
writePolicies(ROOT, work, Number(args.campaigns));
const catalogName = await writeCatalog(ROOT, work, args.catalog, args.seed, args.campaigns);
const bodies = args.corpus ? corpusRequests(ROOT) : requests(2000).map((b) => JSON.stringify(b));
const results = [];
if (args.profile || args.perf) {
  await (args.perf ? perfHead : profileHead)(work, bodies);
  rmSync(work, { recursive: true, force: true });
  process.exit(0);
}

const empty = await startChild('node', [join(ROOT, 'bench/empty-server.mjs')], ROOT, {}, (b) => Number(b.trim().split('\n')[0]) || 0);
try {
  const run = await measure('empty uWS handler', `http://127.0.0.1:${empty.port}/`, bodies);
  results.push(await run(empty.child.pid));
} finally {
  empty.child.kill('SIGKILL');
}
const ROUNDS = Math.max(1, Number(args.rounds) || 1);
/** Median of sorted values (the mean of the middle two when they are even). */
const median = (v) => (v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2);
let base = null;
// The base serves a policy folder from its own checkout: head's may name settings it does not know.
const baseWork = mkdtempSync(join(tmpdir(), 'bidder-bench-base-policies-'));
if (args.base) {
  try {
    base = buildBase(args.base);
    writePolicies(base.dir, baseWork, Number(args.campaigns));
    await writeCatalog(ROOT, baseWork, args.catalog, args.seed, args.campaigns);
  } catch (err) {
    console.error(`base ${args.base}: unavailable (${err.message.split('\n')[0]})`);
  }
}
// A first bidder run, thrown away: on this host the first one after the floor's ran 9-45 % above
// the runs after it in three of the fifteenth session's four benches, and it was always head's.
await runBidder('warm-up (not reported)', ROOT, work, bodies);
results.push(await runBidder('head', ROOT, work, bodies));
if (base && ROUNDS > 1) {
  // Alternating, so a drift of the host over the run falls on both sides alike, and in turns
  // head-base, base-head, ...: with head always first, a place in the order that costs more (the
  // first run after the base's build, or after the other's exit) would fall on one side only.
  const runBase = (i) => runBidder(`base ${args.base} (${base.sha}, round ${i})`, base.dir, baseWork, bodies);
  for (let i = 1; i <= ROUNDS; i++) {
    if (i === 1) results.push(await runBase(i));
    else if (i % 2 === 0) (results.push(await runBase(i)), results.push(await runBidder(`head (round ${i})`, ROOT, work, bodies)));
    else (results.push(await runBidder(`head (round ${i})`, ROOT, work, bodies)), results.push(await runBase(i)));
  }
} else {
  results.push(await runBidder('head (again: noise)', ROOT, work, bodies));
  if (base) results.push(await runBidder(`base ${args.base} (${base.sha})`, base.dir, baseWork, bodies));
}
const head = results[1];
const infer = await inferenceFloor(head.meanBatchRows || 10);
// Micro-batching against scoring each request alone (its rows in one call), same model and backend.
const alone = await inferenceFloor(Math.max(1, Math.round(head.rowsPerScoredReq || head.rowsPerReq || 10)));
const emptyUs = results[0].cpuUsPerReq;

const imps = bodies.reduce((n, b) => n + (JSON.parse(b).imp?.length ?? 0), 0) / bodies.length;
const bytes = bodies.reduce((n, b) => n + Buffer.byteLength(b), 0) / bodies.length;
console.log(`\nbench: ${DURATION}s per run after ${args.warmup}s of warm-up, ${CONNECTIONS} connections, ${catalogName}, ${bodies.length} distinct bodies (${args.corpus ? 'the real requests of test/fixtures/corpus' : "the bench's generated requests"}: ${imps.toFixed(2)} imps, ${Math.round(bytes)} bytes each on average), node ${process.version}`);
console.log('| run | req/s | p50 ms | p99 ms | server CPU µs/req | × floor | rows scored/req | inference µs/req | × (floor + inference) | CPU µs/notice | bid rate | errors |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of results) {
  const inf = r.rowsPerReq === undefined ? undefined : infer.cpuUsPerRow * r.rowsPerReq;
  const cells = r.rowsPerReq === undefined
    ? ['–', '–', '–', '–', '–']
    : [(r.cpuUsPerReq / emptyUs).toFixed(2), r.rowsPerReq, inf.toFixed(1), (r.cpuUsPerReq / (emptyUs + inf)).toFixed(2), r.notices ? r.notices.cpuUsPerNotice : '–'];
  console.log(`| ${r.name} | ${r.rps} | ${r.p50Ms} | ${r.p99Ms} | ${r.cpuUsPerReq} | ${cells[0]} | ${cells[1]} | ${cells[2]} | ${cells[3]} | ${cells[4]} | ${r.bidRate} | ${r.errors} |`);
}
console.log(`\nfloor = the empty uWebSockets.js handler of this run, ${emptyUs} µs/req; inference = raw batched inference alone (${infer.model}, wasm, batch ${infer.batchRows} as head formed): ${infer.cpuUsPerRow} µs CPU per row × the rows head actually scored per request`);
console.log(`scoring each request alone (batch ${alone.batchRows}): ${alone.cpuUsPerRow} µs CPU per row → micro-batching gain ${(alone.cpuUsPerRow / infer.cpuUsPerRow).toFixed(1)} × throughput per core`);
for (const r of results) console.log(`${r.name}: CPU µs/req by thread: ${JSON.stringify(r.cpuUsPerReqByThread)}`);
console.log(`head mean batch: ${head.meanBatchRows} rows; per-stage mean µs (wall, per request): ${JSON.stringify(head.stagesUs)}`);
for (const r of results.filter((x) => x.notices)) {
  console.log(`${r.name} notices: ${r.notices.notices} sent once each (${r.notices.accepted} accepted), ${r.notices.rps}/s, ${r.notices.cpuUsPerNotice} µs CPU per notice against ${r.cpuUsPerReq} per bid request; by thread ${JSON.stringify(r.notices.cpuUsPerNoticeByThread)}`);
}
for (const r of results.filter((x) => x.at70)) {
  console.log(`${r.name} at 70 % of its throughput (${r.at70.offeredRps} req/s offered, in per-second bursts): ${r.at70.rps} req/s, server p50 ≤ ${r.at70.serverP50Ms} ms, server p99 ≤ ${r.at70.serverP99Ms} ms (histogram bucket bounds), client p99 ${r.at70.clientP99Ms} ms`);
}
if (base && ROUNDS > 1) {
  const stats = (rs) => {
    const v = rs.map((r) => r.cpuUsPerReq).sort((a, b) => a - b);
    return { median: +median(v).toFixed(1), min: v[0], max: v[v.length - 1], n: v.length };
  };
  const h = stats(results.filter((r) => r.name.startsWith('head')));
  const b = stats(results.filter((r) => r.name.startsWith('base')));
  const overlap = h.min <= b.max && b.min <= h.max;
  console.log(
    `head vs base over ${ROUNDS} alternating rounds: head median ${h.median} µs/req (${h.min}–${h.max}, ${h.n} runs), ` +
      `base median ${b.median} (${b.min}–${b.max}, ${b.n} runs): head ${((h.median / b.median - 1) * 100).toFixed(1)} %` +
      (overlap ? ' (the ranges overlap: within this host\'s run-to-run noise)' : ''),
  );
}
{
  // Judged on the median of head's runs: one run moves by ±10-15 % on this host.
  const hv = results.filter((r) => r.name.startsWith('head')).map((r) => r.cpuUsPerReq).sort((a, b) => a - b);
  const headUs = median(hv);
  const inf = infer.cpuUsPerRow * head.rowsPerReq;
  const xFloor = headUs / emptyUs;
  const xFloorInf = headUs / (emptyUs + inf);
  const p99 = Math.max(...results.filter((r) => r.name.startsWith('head')).map((r) => r.at70?.serverP99Ms ?? Infinity));
  const mark = (ok) => (ok ? 'met' : 'NOT met');
  const limit = args.catalog ? 6 : 4;
  console.log(
    `targets (issue 16, median of ${hv.length} head runs, ${headUs.toFixed(1)} µs/req; p99 the worst head run's): ≤ ${limit} × floor: ${mark(xFloor <= limit)} (${xFloor.toFixed(2)} ×)` +
      (args.catalog ? '' : `; ≤ 1.5 × (floor + inference): ${mark(xFloorInf <= 1.5)} (${xFloorInf.toFixed(2)} ×)`) +
      `; server p99 ≤ 5 ms at 70 %: ${mark(p99 <= 5)} (≤ ${p99} ms bucket bound, offered in per-second bursts)`,
  );
}
const floorUs = emptyUs + infer.cpuUsPerRow * (head.rowsPerReq ?? 0);
const prevFile = 'bench/baseline.json';
if (existsSync(prevFile)) {
  const prev = JSON.parse(readFileSync(prevFile, 'utf8'));
  const p = prev.results.find((r) => r.name === 'head');
  if (p) console.log(`saved baseline (${prev.commit}): ${p.cpuUsPerReq} µs/req, p99 ${p.p99Ms} ms → head ${((head.cpuUsPerReq / p.cpuUsPerReq - 1) * 100).toFixed(1)} % CPU`);
}
mkdirSync('bench/results', { recursive: true });
const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim();
writeFileSync(args.out, JSON.stringify({ commit, date: new Date().toISOString(), durationS: DURATION, warmupS: Number(args.warmup), connections: CONNECTIONS, requests: args.corpus ? 'corpus' : 'generated', catalog: catalogName, results, inference: infer, inferenceAlone: alone, floorUs }, null, 2) + '\n');
console.log(`written ${args.out}`);
rmSync(work, { recursive: true, force: true });
rmSync(baseWork, { recursive: true, force: true });
process.exit(0);
