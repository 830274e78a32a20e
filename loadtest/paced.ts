import { Agent, request as httpRequest } from 'node:http';

/** One request to send: what the load mix drew. */
export interface PacedRequest {
  path: string;
  body: string;
}

export interface PacedOptions<R extends PacedRequest> {
  origin: string;
  /** Requests per second, sent one every 1/rate s. */
  ratePerS: number;
  durationS: number;
  /** Keep-alive connections in the pool; at most one request in flight on each. */
  connections: number;
  /** The next request; called when it goes out, so requests that never do cost nothing. */
  next(): R;
  /** An answer: its status, body and latency in ms from the request's scheduled send time. */
  onAnswer(req: R, status: number, body: string, latencyMs: number): void;
  /**
   * A request that fell due but was still queued when the step ended, never sent: `waitedMs` is
   * how long it had waited by then (from its due time to the last answer), a lower bound of its
   * latency had it been sent. Drawn with `next()` like the others, so its tmax is known.
   */
  onUnsent(req: R, waitedMs: number): void;
  /** Monotonic clock in ms. */
  now?: () => number;
}

/** No answer this long after a request went out is a timeout (autocannon's default). */
const TIMEOUT_MS = 10_000;

export interface PacedResult {
  /** Requests written to a connection; fewer than were due when some never got one. */
  sent: number;
  /** Requests due but still queued at the end, never sent; each given to `onUnsent`. */
  unsent: number;
  errors: number;
  timeouts: number;
  /** Seconds from the first scheduled send until the last answer. */
  elapsedS: number;
}

/**
 * An open-loop sender: request i is due at start + i/rate whatever came back before, so a
 * fixed rate is spread evenly through each second. A request due while every connection waits
 * on an answer queues for the next free one, and its latency still counts from when it was due:
 * a stall of the server shows in full in the latencies of the requests it held up, where a
 * sender that waits for a free connection before it starts the clock hides it (coordinated
 * omission). Requests still queued when the duration ends are not sent, so that a step lasts
 * its duration plus the answers in flight, however far past saturation; but they are not left
 * out: once the last answer is in, each is handed to `onUnsent` with the time it had waited, a
 * lower bound of its latency. Dropping them (as before) left out exactly the requests that
 * waited longest: 200 req/s of capacity offered 400/s for 3 s timed 612 of 1,200, p99 1.5 s, and
 * the 588 never timed had waited 0-1.5 s already and would have waited 1.5-3 s.
 */
export function sendPaced<R extends PacedRequest>(o: PacedOptions<R>): Promise<PacedResult> {
  const now = o.now ?? (() => performance.now());
  const url = new URL(o.origin);
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1'); // an IPv6 literal without its brackets
  const port = url.port;
  // fifo: every connection takes its turn, as autocannon's do, rather than the last one freed.
  const agent = new Agent({ keepAlive: true, maxSockets: o.connections, scheduling: 'fifo' });
  const intervalMs = 1000 / o.ratePerS;
  const started = now();
  const endAt = started + o.durationS * 1000;
  // Due times of requests waiting for a connection, oldest first, from `head` on.
  let queue: number[] = [];
  let head = 0;
  let due = 0;
  let inFlight = 0;
  let sending = true;
  const result: PacedResult = { sent: 0, unsent: 0, errors: 0, timeouts: 0, elapsedS: 0 };
  let resolve!: (r: PacedResult) => void;
  const done = new Promise<PacedResult>((r) => (resolve = r));

  function finishIfIdle() {
    if (sending || inFlight > 0) return;
    agent.destroy();
    const t = now();
    for (let i = head; i < queue.length; i++) {
      result.unsent++;
      o.onUnsent(o.next(), t - queue[i]);
    }
    queue = [];
    head = 0;
    result.elapsedS = (t - started) / 1000;
    resolve(result);
  }

  function freed() {
    inFlight--;
    if (sending && head < queue.length) {
      const at = queue[head++];
      if (head === queue.length) {
        queue = [];
        head = 0;
      }
      send(at);
    } else finishIfIdle();
  }

  function send(dueAt: number) {
    inFlight++;
    result.sent++;
    const req = o.next();
    let settled = false;
    const fail = (timedOut: boolean) => {
      if (settled) return;
      settled = true;
      if (timedOut) result.timeouts++;
      else result.errors++;
      freed();
    };
    const r = httpRequest(
      { agent, hostname, port, method: 'POST', path: req.path, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(req.body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          o.onAnswer(req, res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), now() - dueAt);
          freed();
        });
        res.on('error', () => fail(false));
      },
    );
    r.setTimeout(TIMEOUT_MS, () => {
      fail(true);
      r.destroy();
    });
    r.on('error', () => fail(false));
    r.end(req.body);
  }

  // Each tick sends every request due by now, each timed from its own due time, then sleeps
  // until the next is due: timers fire a millisecond or more late, and the rate must not drift.
  function tick() {
    const t = now();
    for (let at = started + due * intervalMs; at <= t && at < endAt; at = started + ++due * intervalMs) {
      if (inFlight < o.connections) send(at);
      else queue.push(at);
    }
    const next = started + due * intervalMs;
    if (next < endAt) {
      setTimeout(tick, Math.max(0, next - now()));
      return;
    }
    // What is still queued stays unsent; finishIfIdle counts it once the last answer is in.
    sending = false;
    finishIfIdle();
  }
  tick();
  return done;
}
