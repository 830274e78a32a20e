import type { EventEmitter } from 'node:events';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { createRng } from '../src/random/random.js';
import { sendPaced } from './paced.js';
import { createRequestMix, type MixItem, type MixOptions } from './mix.js';
import { createNoticeFirer, type NoticeCounts, type NoticePlan } from '../src/harness/exchange.js';
import { processCpuSeconds, processRssBytes } from '../src/harness/process.js';
import { delta, scrape } from '../src/harness/prometheus.js';
import type { Target } from './target.js';

export interface LoadOptions {
  /** Total measured seconds, warm-up excluded. */
  durationS: number;
  /** Fixed-rate mode: the top request rate, reached in `steps` equal steps. Absent: max throughput. */
  rate: number | null;
  /** Load steps below the top, for the latency-against-load curve. */
  steps: number;
  /**
   * Max-throughput mode: after the other steps, one more at this multiple of the rate the max
   * step reached (2 = twice saturation), as long as the max step; null for none.
   */
  overload?: number | null;
  connections: number;
  warmupS: number;
  seed: number;
  mix: Omit<MixOptions, 'seed'>;
  notices: NoticePlan;
  /** Progress lines on stderr: one line rewritten in place on a terminal, one per second otherwise. */
  progress: boolean;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface StepResult {
  name: string;
  /** Requested rate; null for an unthrottled (max-throughput) step. */
  targetRps: number | null;
  durationS: number;
  requests: number;
  reqPerSec: number;
  /** Requests the generator sent per second; below targetRps when its connections were all waiting. */
  sentPerSec: number;
  /**
   * Client-side latency in ms, every answer counted (also 204s and errors), and in fixed-rate
   * steps also every request that fell due but was still queued at the step's end (`unsent`),
   * counted at the time it had waited by then: a lower bound, so past saturation these
   * percentiles are lower bounds too.
   */
  latencyMs: Percentiles;
  /**
   * Fixed-rate steps: requests due but never sent (every connection still waiting when the step
   * ended), counted in `latencyMs` and `pastTmax` at their wait so far; 0 in unthrottled steps.
   */
  unsent: number;
  status: { bid: number; nobid: number; '4xx': number; '5xx': number; other: number };
  /** Connection errors and timeouts seen by the client. */
  transportErrors: number;
  bidRate: number;
  /** Answers that reached the client after the request's tmax, and unsent requests that had waited longer than theirs. */
  pastTmax: number;
  /** Server CPU (user + system) per request in µs; null when the bidder's pid is unknown. */
  cpuUsPerRequest: number | null;
  /** Server CPU used over the step, in cores (1 = one core busy throughout); null without a pid. */
  cpuCores: number | null;
  /** The bidder's resident memory at the end of the step, bytes; null without a pid. */
  rssBytes: number | null;
  /**
   * CPU this harness used over the step, in cores. Near 1 the generator, not the bidder, set the
   * pace, and its own event-loop delays are inside the client latencies (and "past tmax").
   */
  harnessCores: number;
  /**
   * This harness's own event-loop delay over the step (ms): a stall here delays reading answers,
   * so it is inside every client latency of the answers it held, and can alone put them past tmax.
   */
  harnessLoopDelayMs: { p99: number; max: number };
  server: {
    outcomes: Record<string, number>;
    noBidReasons: Record<string, number>;
    lateAnswers: number;
    internalErrors: number;
  };
  notices: NoticeCounts;
}

const total = (r: Record<string, number>) => Object.values(r).reduce((s, x) => s + x, 0);

export function percentiles(samples: Float64Array): Percentiles {
  if (samples.length === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  const s = samples.slice().sort();
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: s[s.length - 1] };
}

/** A growable store of latency samples (ms); typed so a few million cost a few MB. */
function sampleStore() {
  let buf = new Float64Array(1 << 16);
  let n = 0;
  return {
    add(v: number) {
      if (n === buf.length) {
        const next = new Float64Array(buf.length * 2);
        next.set(buf);
        buf = next;
      }
      buf[n++] = v;
    },
    get values() {
      return buf.subarray(0, n);
    },
  };
}

interface Live {
  requests: number;
  bids: number;
  errors: number;
  pastTmax: number;
}

/**
 * Drives the target and returns one result per load step: in max-throughput mode an unthrottled
 * step first (autocannon), then `steps` fixed-rate steps at fractions of the rate it reached
 * (paced, open loop); in fixed-rate mode `steps` steps up to the given rate. Latency is taken from
 * each response's own timing (autocannon's histogram rounds to whole milliseconds, too coarse for
 * this server), and in fixed-rate steps from when the request was due, not when it went out.
 */
export async function runLoad(target: Target, o: LoadOptions): Promise<StepResult[]> {
  const mix = createRequestMix({ ...o.mix, seed: o.seed });
  const firer = createNoticeFirer({ origin: target.origin, rng: createRng(o.seed + 1), plan: o.notices, maxInFlight: 64 });
  const live: Live = { requests: 0, bids: 0, errors: 0, pastTmax: 0 };
  let samples = sampleStore();
  let answered = 0;
  let status = { bid: 0, nobid: 0, '4xx': 0, '5xx': 0, other: 0 };
  // onResponse and the 'response' event fire back to back for the same answer (autocannon's
  // client), so the tmax read by one is handed to the other through this variable.
  let answeredTmax = 0;

  function classify(code: number, body: string) {
    if (code === 200 && body.includes('"seatbid"')) {
      status.bid++;
      live.bids++;
      firer.onBidResponse(body);
    } else if (code === 200 || code === 204) status.nobid++;
    else if (code >= 500) status['5xx']++;
    else if (code >= 400) status['4xx']++;
    else status.other++;
  }
  function time(code: number, ms: number, tmaxMs: number) {
    live.requests++;
    answered++;
    if (code >= 500) live.errors++;
    samples.add(ms);
    if (ms > tmaxMs) live.pastTmax++;
  }
  /** A request due but never sent: in the latencies at the wait it had, a lower bound. */
  function unsent(waitedMs: number, tmaxMs: number) {
    samples.add(waitedMs);
    if (waitedMs > tmaxMs) live.pastTmax++;
  }

  const request = {
    method: 'POST' as const,
    setupRequest(req: Record<string, unknown>, context: Record<string, unknown>) {
      const item: MixItem = mix.next();
      context.tmaxMs = item.tmaxMs;
      return { ...req, path: item.path, body: item.body, headers: { 'content-type': 'application/json' } };
    },
    onResponse(code: number, body: string, context: Record<string, unknown>) {
      answeredTmax = context.tmaxMs as number;
      classify(code, body);
    },
  };

  /** The unthrottled steps: autocannon's closed loop, each connection sending as soon as it is answered. */
  async function unthrottled(durationS: number): Promise<{ sent: number; unsent: number; transportErrors: number }> {
    const instance = autocannon({
      url: target.origin,
      connections: o.connections,
      duration: durationS,
      requests: [request as unknown as autocannon.Request],
      // The types give the promise form only; the returned object is also the run's event emitter.
    }) as unknown as Promise<autocannon.Result> & EventEmitter;
    instance.on('response', (_client: unknown, code: number, _bytes: number, ms: number) => time(code, ms, answeredTmax));
    const result = await instance;
    return { sent: result.requests.sent, unsent: 0, transportErrors: result.errors + result.timeouts };
  }

  /**
   * The fixed-rate steps: an open loop (paced.ts) sending one request every 1/rate s, latency
   * from when each was due. autocannon's `overallRate` is a per-second allowance per connection:
   * each second's requests went out back to back and the connections then sat idle, so a step
   * measured bursts at full speed, and a bidder stall between bursts was never seen. Requests
   * still queued at the end are not sent but counted, at the wait they had (`unsent`).
   */
  async function paced(targetRps: number, durationS: number): Promise<{ sent: number; unsent: number; transportErrors: number }> {
    const r = await sendPaced({
      origin: target.origin,
      ratePerS: targetRps,
      durationS,
      // Up to --connections: one connection answered in 20 ms carries 50 req/s at most, and a
      // request due while all are waiting queues (its wait counted), so a stall takes them all.
      connections: Math.max(1, Math.min(o.connections, Math.round(targetRps))),
      next: () => mix.next(),
      onAnswer(item, code, body, ms) {
        classify(code, body);
        time(code, ms, item.tmaxMs);
      },
      onUnsent: (item, waitedMs) => unsent(waitedMs, item.tmaxMs),
    });
    return { sent: r.sent, unsent: r.unsent, transportErrors: r.errors + r.timeouts };
  }

  async function step(name: string, targetRps: number | null, durationS: number, record: boolean): Promise<StepResult> {
    samples = sampleStore();
    answered = 0;
    status = { bid: 0, nobid: 0, '4xx': 0, '5xx': 0, other: 0 };
    const notices0 = structuredClone(firer.counts);
    const pastTmax0 = live.pastTmax;
    const before = await scrape(target.origin);
    const cpu0 = target.pid ? processCpuSeconds(target.pid) : null;
    const own0 = process.cpuUsage();
    const loopDelay = monitorEventLoopDelay({ resolution: 5 });
    loopDelay.enable();
    const started = performance.now();
    const ticker = record && o.progress ? progressTicker(name, live) : null;
    const sent = targetRps ? await paced(targetRps, durationS) : await unthrottled(durationS);
    const elapsedS = (performance.now() - started) / 1000;
    ticker?.stop();
    await firer.idle();
    const cpu1 = target.pid ? processCpuSeconds(target.pid) : null;
    const own = process.cpuUsage(own0);
    loopDelay.disable();
    const after = await scrape(target.origin);
    const n = answered;
    const served = status.bid + status.nobid;
    const notices = structuredClone(firer.counts);
    for (const k of Object.keys(notices.sent) as Array<keyof NoticeCounts['sent']>) notices.sent[k] -= notices0.sent[k];
    notices.ok -= notices0.ok;
    notices.refused -= notices0.refused;
    notices.failed -= notices0.failed;
    notices.dropped -= notices0.dropped;
    const pastTmax = live.pastTmax - pastTmax0;
    return {
      name,
      targetRps,
      durationS: elapsedS,
      requests: n,
      reqPerSec: n / elapsedS,
      sentPerSec: sent.sent / elapsedS,
      latencyMs: percentiles(samples.values),
      unsent: sent.unsent,
      status: { ...status },
      transportErrors: sent.transportErrors,
      bidRate: served ? status.bid / served : 0,
      pastTmax,
      cpuUsPerRequest: cpu0 !== null && cpu1 !== null && n > 0 ? ((cpu1 - cpu0) * 1e6) / n : null,
      cpuCores: cpu0 !== null && cpu1 !== null ? (cpu1 - cpu0) / elapsedS : null,
      rssBytes: target.pid ? processRssBytes(target.pid) : null,
      harnessCores: (own.user + own.system) / 1e6 / elapsedS,
      harnessLoopDelayMs: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
      server: {
        outcomes: delta(before, after, 'bidder_requests_total', 'outcome'),
        noBidReasons: delta(before, after, 'bidder_nobid_total', 'reason'),
        lateAnswers: total(delta(before, after, 'bidder_late_answers_total')),
        internalErrors: total(delta(before, after, 'bidder_internal_errors_total')),
      },
      notices,
    };
  }

  const results: StepResult[] = [];
  if (o.warmupS > 0) await step('warm-up', null, o.warmupS, false);
  if (o.rate === null) {
    const maxS = o.steps > 0 ? o.durationS * 0.4 : o.durationS;
    const max = await step('max', null, maxS, true);
    results.push(max);
    for (let i = 1; i <= o.steps; i++) {
      const rps = (max.reqPerSec * i) / (o.steps + 1);
      results.push(await step(`${Math.round((100 * i) / (o.steps + 1))}% of max`, rps, (o.durationS - maxS) / o.steps, true));
    }
    if (o.overload) results.push(await step(`${o.overload}x max`, max.reqPerSec * o.overload, maxS, true));
  } else {
    const n = Math.max(1, o.steps);
    for (let i = 1; i <= n; i++) results.push(await step(`${Math.round((100 * i) / n)}% of rate`, (o.rate * i) / n, o.durationS / n, true));
  }
  if (o.progress) process.stderr.write('\n');
  return results;
}

function progressTicker(name: string, live: Live) {
  const tty = process.stderr.isTTY;
  let last = { ...live };
  let t = performance.now();
  let seconds = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    const dt = (now - t) / 1000;
    const req = live.requests - last.requests;
    const bids = live.bids - last.bids;
    seconds++;
    const line =
      `[${name}] ${seconds}s  ${Math.round(req / dt).toLocaleString('en')} req/s  ` +
      `bid ${req ? ((100 * bids) / req).toFixed(1) : '0.0'}%  5xx ${live.errors}  past tmax ${live.pastTmax}`;
    process.stderr.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
    last = { ...live };
    t = now;
  }, 1000);
  return { stop: () => clearInterval(timer) };
}
