import { Redis } from 'ioredis';
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
