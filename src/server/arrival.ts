import { performance } from 'node:perf_hooks';

/**
 * When did a request that is being read now arrive? No earlier, as far as this process can tell,
 * than the event loop's current lag: the time the loop has just spent busy instead of reading its
 * sockets.
 *
 * A bidder's deadline must count from the request's arrival, but the server only sees a request
 * when the loop reads its socket. Bytes that arrive while the loop scores a batch, answers, or
 * collects garbage wait in the kernel until the next poll. Counted from the read, such a request
 * spends its budget twice and is answered after tmax, exactly when an overloaded bidder should
 * be shedding work instead. A timer that should fire every `intervalMs` measures that wait: how
 * late it fired is how long the loop was held (the same measure as Node's event-loop delay). A
 * request read now, with no wait for I/O since the tick, may have arrived as early as the start
 * of that hold. If the loop has waited for I/O since the tick (libuv's idle time grew), it arrived
 * during that wait, after the hold: the lag the tick measured is not its own.
 */
export interface LagClockOptions {
  /** Monotonic ms. */
  now: () => number;
  intervalMs?: number;
  /** Cumulative ms the event loop spent waiting for I/O (default: performance.nodeTiming.idleTime). */
  idleMs?: () => number;
}

/** A poll that returns at once still counts a few microseconds of idle time. */
const MIN_WAIT_MS = 0.1;

export interface LagClock {
  /** The earliest moment a request being read now can have arrived (monotonic ms). */
  arrival(): number;
  stop(): void;
}

export function createLagClock(opts: LagClockOptions, schedule = setInterval, cancel = clearInterval): LagClock {
  const interval = opts.intervalMs ?? 5;
  // What eventLoopUtilization().idle reads, without the object it builds on every bid request.
  const idleMs = opts.idleMs ?? (() => performance.nodeTiming.idleTime);
  let lastTick = opts.now();
  let lastLag = 0;
  let idleAtTick = idleMs();
  const timer = schedule(() => {
    const t = opts.now();
    lastLag = Math.max(0, t - lastTick - interval);
    lastTick = t;
    idleAtTick = idleMs();
  }, interval);
  (timer as { unref?: () => void }).unref?.();
  return {
    arrival() {
      const t = opts.now();
      // The loop has waited for I/O since the tick: the request arrived during that wait, so only
      // a hold since then (the tick overdue) can be its own.
      if (idleMs() - idleAtTick >= MIN_WAIT_MS) return t - Math.max(0, t - lastTick - interval);
      // It has not: the request was ready when this poll began, after the tick, or became ready
      // during the hold the tick measured, after the previous poll had taken its list. Both
      // count: a loop reading a flood spends one long poll preparing requests that queued
      // through the turn before it, and counting only the longer of the two let such requests
      // be admitted and then answered after tmax.
      return lastTick - lastLag;
    },
    stop() {
      cancel(timer);
    },
  };
}
