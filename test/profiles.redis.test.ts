import { Redis } from 'ioredis';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createProfileStore, createRedisProfileStore, type ProfileStore } from '../src/features/profiles.js';
import { createRedisFrequencyStore } from '../src/freqcap/freqcap.js';
import { connectRedis, dropKeysAndQuit, REDIS_URL } from './helpers/redis.js';

/**
 * The fleet profile store against a real Redis: what one bidder's notices record, another
 * bidder's warm loads; the same history, window and count rules as the local store; atomic under
 * concurrent writers; a Redis outage never throws from a notice.
 */
const client = await connectRedis();
if (!client && process.env.CI === 'true') throw new Error(`Redis unreachable at ${REDIS_URL}: the Redis suites need it in CI`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!client)('Redis profile store', () => {
  const prefix = `test:profiles:${process.pid}:${Date.now().toString(36)}:`;
  const opened: Redis[] = [];
  let n = 0;
  afterAll(async () => {
    for (const c of opened) c.disconnect();
    await dropKeysAndQuit(client!, prefix);
  });

  /** Bidders' stores, each on its own connection, sharing one key prefix and one settable clock. */
  function fleet(opts: { historyLength?: number; windowSec?: number; localTtlMs?: number } = {}) {
    const keyPrefix = `${prefix}${n++}:`;
    let now = Date.UTC(2026, 0, 10, 12);
    const clock = () => now;
    const open = (onWriteError?: (err: Error) => void) => {
      const c = new Redis(REDIS_URL, { enableAutoPipelining: true, maxRetriesPerRequest: 0 });
      opened.push(c);
      return { store: createRedisProfileStore({ client: c, keyPrefix, clock, now: clock, localTtlMs: 30, ...opts, onWriteError }), client: c };
    };
    return { open, keyPrefix, clock, advance: (ms: number) => (now += ms) };
  }

  /** Commands on one connection run in order: once this answers, the store's writes are in Redis. */
  const flushed = (c: Redis) => c.ping();

  it('a notice recorded through one store shapes the profile another store warms', async () => {
    const f = fleet({ historyLength: 3, localTtlMs: 1000 });
    const a = f.open();
    const b = f.open();
    await b.store.warm(['u1']);
    expect(b.store.get('u1')).toBeUndefined();
    a.store.recordImpression('u1', 'c1', ['IAB1', 'IAB2']);
    a.store.recordImpression('u1', 'c1', ['IAB3', 'IAB4']);
    a.store.recordImpression('u1', 'c2', []);
    a.store.recordClick('u1', ['IAB9']);
    await flushed(a.client);
    const expected = { seenCategories: ['IAB2', 'IAB3', 'IAB4'], clickedCategories: ['IAB9'], campaignImpressions: { c1: 2, c2: 1 } };
    // Within its TTL b keeps answering from what it loaded: the documented staleness.
    await b.store.warm(['u1']);
    expect(b.store.get('u1')).toBeUndefined();
    f.advance(1001); // past the TTL, on the store's clock
    expect(b.store.get('u1')).toBeUndefined(); // stale entries still answer until a warm replaces them
    await b.store.warm(['u1']);
    expect(b.store.get('u1')).toEqual(expected);
    // A store that never saw this user loads the same profile.
    const c = f.open();
    await c.store.warm(['u1', 'nobody', '']);
    expect(c.store.get('u1')).toEqual(expected);
    expect(c.store.get('nobody')).toBeUndefined();
    expect(c.store.get('')).toBeUndefined();
  });

  it('follows the local store: same histories, counts and window resets for the same notices', async () => {
    const f = fleet({ historyLength: 4, windowSec: 10 });
    const local: ProfileStore = createProfileStore({ historyLength: 4, windowSec: 10, clock: f.clock });
    const a = f.open();
    const b = f.open();
    const steps: Array<[string, string, string[]] | [string, string[]] | number> = [
      ['u', 'c1', ['IAB1']],
      ['u', ['IAB7', 'IAB8']],
      ['u', 'c2', ['IAB2', 'IAB3', 'IAB4']],
      4_000,
      ['u', 'c1', ['IAB5']],
      ['u', ['IAB9']],
      7_000, // the window that began with the first impression has run out
      ['u', 'c2', ['IAB6']],
      11_000,
      ['u', ['IAB10']], // a click alone starts a new, empty window
    ];
    for (const s of steps) {
      if (typeof s === 'number') {
        f.advance(s);
        continue;
      }
      if (s.length === 3) {
        local.recordImpression(s[0], s[1], s[2]);
        a.store.recordImpression(s[0], s[1], s[2]);
      } else {
        local.recordClick(s[0], s[1]);
        a.store.recordClick(s[0], s[1]);
      }
      await flushed(a.client);
      f.advance(31); // past b's 30 ms TTL
      await b.store.warm(['u']);
      expect(b.store.get('u')).toEqual(local.get('u'));
    }
    expect(b.store.get('u')).toEqual({ seenCategories: ['IAB3', 'IAB4', 'IAB5', 'IAB6'], clickedCategories: ['IAB7', 'IAB8', 'IAB9', 'IAB10'], campaignImpressions: {} });
    // A writer that never warmed the user keeps no local copy (it would shadow Redis): it only writes through.
    expect(a.store.get('u')).toBeUndefined();
    const ttl = await client!.pttl(`${f.keyPrefix}u`);
    expect(ttl).toBeGreaterThan(29 * 86_400_000);
  });

  it('applies its own notices to a cached user at once, before any warm', async () => {
    const f = fleet({ localTtlMs: 60_000 });
    const a = f.open();
    await a.store.warm(['u']);
    a.store.recordImpression('u', 'c1', ['IAB1']);
    a.store.recordClick('u', ['IAB2']);
    expect(a.store.get('u')).toEqual({ seenCategories: ['IAB1'], clickedCategories: ['IAB2'], campaignImpressions: { c1: 1 } });
  });

  it('loses no update when bidders write the same user at once', async () => {
    const f = fleet({ historyLength: 1000 });
    const writers = [f.open(), f.open(), f.open()];
    for (let i = 0; i < 200; i++) writers[i % 3].store.recordImpression('hot', `c${i % 2}`, [`IAB${i}`]);
    await Promise.all(writers.map((w) => flushed(w.client)));
    const reader = f.open();
    await reader.store.warm(['hot']);
    const p = reader.store.get('hot')!;
    expect(p.campaignImpressions).toEqual({ c0: 100, c1: 100 });
    expect(p.seenCategories).toHaveLength(200);
  });

  it("warms a user's caps and profile in one write on an auto-pipelined connection (one round trip)", async () => {
    const f = fleet({ localTtlMs: 60_000 });
    const a = f.open();
    await a.client.ping();
    const caps = createRedisFrequencyStore({ client: a.client, keyPrefix: `${f.keyPrefix}fc:`, clock: f.clock, now: f.clock });
    const stream = (a.client as unknown as { stream: { write: (...args: unknown[]) => boolean } }).stream;
    const write = vi.spyOn(stream, 'write');
    // What the bidder's user warm does: both reads issued in one tick.
    await Promise.all([caps.warm(['w1']), a.store.warm(['w1'])]);
    expect(write).toHaveBeenCalledTimes(1);
    write.mockRestore();
  });

  it('never throws from a notice while Redis is away; warm rejects and the cached profile stays', async () => {
    const f = fleet({ localTtlMs: 1 });
    const onWriteError = vi.fn();
    const a = f.open(onWriteError);
    a.store.recordImpression('u', 'c1', ['IAB1']);
    await flushed(a.client);
    await a.store.warm(['u']);
    a.client.disconnect();
    await sleep(5);
    expect(() => a.store.recordImpression('u', 'c1', ['IAB2'])).not.toThrow();
    await vi.waitFor(() => expect(onWriteError).toHaveBeenCalled());
    f.advance(2); // past the 1 ms TTL: the warm asks Redis
    await expect(a.store.warm(['u'])).rejects.toThrow();
    expect(a.store.get('u')).toEqual({ seenCategories: ['IAB1', 'IAB2'], clickedCategories: [], campaignImpressions: { c1: 2 } });
  });
});
