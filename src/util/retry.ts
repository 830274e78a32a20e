/**
 * What a start does with a Redis that does not answer in time (paused by CLIENT PAUSE or a
 * failover, busy, loading its data): `attempt` again after 100 ms, the wait doubling to 2 s, for up
 * to `timeoutMs` of waiting in all, each retry told to `onRetry`, rather than the process exiting
 * and its supervisor restarting it into the same stall. An error `retryable` refuses is thrown at
 * once, and the last one when the time is spent, each as `fail` words it.
 */
export async function retryAtStart<T>(
  attempt: () => Promise<T>,
  o: {
    timeoutMs: number;
    retryable(reason: string): boolean;
    onRetry(reason: string, attempt: number, retryInMs: number): void;
    fail(reason: string, spent: { attempts: number; waitedMs: number } | null): Error;
  },
): Promise<T> {
  let waitedMs = 0;
  for (let n = 1, waitMs = RETRY_FIRST_MS; ; n++, waitMs = Math.min(waitMs * 2, RETRY_MAX_MS)) {
    try {
      return await attempt();
    } catch (err) {
      const reason = (err as Error).message;
      if (!o.retryable(reason)) throw o.fail(reason, null);
      if (waitedMs >= o.timeoutMs) throw o.fail(reason, { attempts: n, waitedMs });
      const retryInMs = Math.min(waitMs, o.timeoutMs - waitedMs);
      o.onRetry(reason, n, retryInMs);
      await new Promise((resolve) => setTimeout(resolve, retryInMs));
      waitedMs += retryInMs;
    }
  }
}

const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 2000;
