import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { dropKeys } from '../../src/harness/redis.js';

/** The Redis the suites use: REDIS_URL, else the machine's own at 127.0.0.1:6379. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A connected client, or null when Redis does not answer (the caller decides: fail in CI, skip elsewhere). */
export async function connectRedis(url = REDIS_URL): Promise<Redis | null> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null });
  try {
    await client.connect();
    await client.ping();
    return client;
  } catch {
    client.disconnect();
    return null;
  }
}

/** Remove every key under `prefix` (what one test run created), then close the connection. */
export async function dropKeysAndQuit(client: Redis, prefix: string): Promise<void> {
  await dropKeys(client, prefix);
  await client.quit();
}

/**
 * `body` as a suite named `name` where `client` connected; where it did not, under CI (CI=true) one
 * failing test naming `url` (an absent Redis is a failure there, not a skip), elsewhere a skipped
 * suite and a warning saying how to run it.
 */
export function describeWithRedis(name: string, url: string, client: Redis | null, body: (client: Redis) => void): void {
  if (client !== null) {
    describe(name, () => body(client));
    return;
  }
  if (process.env.CI === 'true') {
    describe(name, () => {
      it(`needs Redis at ${url} (CI=true: an absent Redis is a failure, not a skip)`, () => {
        expect.fail(`Redis unreachable at ${url}`);
      });
    });
    return;
  }
  console.warn(`[${name}] skipped: no Redis at ${url} (set REDIS_URL, or CI=true to make this a failure)`);
  describe.skip(`${name} (no Redis at ${url})`, () => {
    it('skipped', () => {});
  });
}
