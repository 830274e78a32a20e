// A fleet bidder's warm skips a user still fresh in its local cache (`has()`), but eligibility
// counts a moment later, and an entry that passed its localTtlMs in between was gone from `get()`:
// the count read 0 (never shown, not unknown) and a capped user was bid on again (review F3: a
// user recorded at 10 000 ms, warmed, skipped at 10 999 ms, counted at 11 001 ms read 0 of cap 1).
import { afterAll, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createRedisFrequencyStore } from '../src/freqcap/index.js';
import { connectRedis, describeWithRedis, dropKeysAndQuit, REDIS_URL } from './helpers/redis.js';

// Database 15: the reviewers' and these tests' own.
const URL15 = `${REDIS_URL.replace(/\/\d+$/, '')}/15`;
const client = await connectRedis(URL15);

describeWithRedis('freqcap-stale-count: a user cached at the warm and stale at the count', URL15, client, (admin) => {
  const prefix = `test:fcstale:${process.pid}:${Date.now().toString(36)}:`;
  const opened: Redis[] = [];
  afterAll(async () => {
    for (const c of opened) c.disconnect();
    await dropKeysAndQuit(admin, prefix);
  });

  it('counts the impressions the warm left in the cache, though its entry passed localTtlMs since', async () => {
    const redis = new Redis(URL15, { enableAutoPipelining: true, maxRetriesPerRequest: 0 });
    opened.push(redis);
    let mono = 10_000;
    const store = createRedisFrequencyStore({ client: redis, keyPrefix: prefix, clock: () => Date.parse('2026-06-01T12:00:00Z'), now: () => mono, localTtlMs: 1000 });
    await store.record('U', 'acme-shoes');
    await store.warm(['U']);
    expect(store.count('U', 'acme-shoes', 86400)).toBe(1);
    mono = 10_999;
    await store.warm(['U']); // fresh: not asked again
    expect(store.count('U', 'acme-shoes', 86400)).toBe(1);
    mono = 11_001; // eligibility runs 2 ms later, no warm between
    expect(store.count('U', 'acme-shoes', 86400)).toBe(1);
    // Every capped candidate of the request asks: the stale entry is not dropped by the first.
    expect(store.count('U', 'acme-shoes', 86400)).toBe(1);
    // The next request's warm finds it stale and loads the user again.
    const before = redis.hgetall.bind(redis);
    let loads = 0;
    redis.hgetall = ((...a: Parameters<typeof before>) => (loads++, before(...a))) as typeof redis.hgetall;
    await store.warm(['U']);
    expect(loads).toBe(1);
    expect(store.count('U', 'acme-shoes', 86400)).toBe(1);
  });

  it('a win recorded while the entry is stale counts in it for a request already warmed', async () => {
    const redis = new Redis(URL15, { enableAutoPipelining: true, maxRetriesPerRequest: 0 });
    opened.push(redis);
    let mono = 20_000;
    const store = createRedisFrequencyStore({ client: redis, keyPrefix: prefix, clock: () => Date.parse('2026-06-01T12:00:00Z'), now: () => mono, localTtlMs: 1000 });
    await store.warm(['V']);
    mono = 20_999;
    await store.warm(['V']); // a second request, skipped: fresh
    mono = 21_001;
    await store.record('V', 'acme-shoes'); // the first request's win
    expect(store.count('V', 'acme-shoes', 86400)).toBe(1); // the second request's eligibility
  });
});
