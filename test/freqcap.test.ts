import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocalFrequencyStore, createRedisFrequencyStore, type FrequencyStore } from '../src/freqcap/index.js';
import { connectRedis, dropKeysAndQuit, REDIS_URL } from './helpers/redis.js';

const T0 = Date.UTC(2026, 0, 10, 12);
const url = REDIS_URL;
const prefix = `test:fc:${process.pid}:${Date.now().toString(36)}:`;

const client = await connectRedis(url);

function contract(name: string, make: (clock: () => number) => FrequencyStore) {
  describe(`frequency store contract: ${name}`, () => {
    it('counts impressions in a sliding window, per user and campaign', async () => {
      let now = T0;
      const s = make(() => now);
      await s.warm(['u1', 'u2']);
      expect(s.count('u1', 'c1', 3600)).toBe(0);
      await s.record('u1', 'c1');
      now += 1000;
      await s.record('u1', 'c1');
      await s.record('u1', 'c2');
      await s.warm(['u1']);
      expect(s.count('u1', 'c1', 3600)).toBe(2);
      expect(s.count('u1', 'c2', 3600)).toBe(1);
      expect(s.count('u2', 'c1', 3600)).toBe(0);
      now += 3600_000 - 500;
      await s.warm(['u1']);
      expect(s.count('u1', 'c1', 3600)).toBe(1);
      expect(s.count('u1', 'c1', 86_400)).toBe(2);
      await s.close();
    });

    it('keeps at most maxPerCampaign impressions', async () => {
      let now = T0;
      const s = make(() => now);
      await s.warm(['u9']);
      for (let i = 0; i < 40; i++) {
        await s.record('u9', 'c1');
        now += 10;
      }
      await s.warm(['u9']);
      expect(s.count('u9', 'c1', 3600)).toBe(32);
      await s.close();
    });

    // An impression recorded by a clock behind (another bidder of the fleet, or this one's stepped
    // back) came after the user's others but is older than them. The count walked back from the
    // last recorded and stopped at the first outside the window: one impression 2 h behind hid
    // every other of the user (0 where 1 is right, and 0 where 2 is right over 3 h).
    it('counts every impression in the window, whatever the order the clock recorded them in', async () => {
      let now = T0;
      const s = make(() => now);
      await s.warm(['u7']);
      await s.record('u7', 'c1');
      now = T0 - 2 * 3600_000;
      await s.record('u7', 'c1');
      now = T0 + 1000;
      await s.warm(['u7']);
      expect(s.count('u7', 'c1', 3600)).toBe(1);
      expect(s.count('u7', 'c1', 3 * 3600)).toBe(2);
      await s.record('u7', 'c1');
      await s.warm(['u7']);
      expect(s.count('u7', 'c1', 3600)).toBe(2);
      await s.close();
    });

    it('past maxPerCampaign, drops the oldest impression, not the first recorded', async () => {
      let now = T0;
      const s = make(() => now);
      await s.warm(['u8']);
      for (let i = 0; i < 32; i++) {
        await s.record('u8', 'c1');
        now += 10;
      }
      now = T0 - 2 * 3600_000;
      await s.record('u8', 'c1');
      now = T0 + 1000;
      await s.warm(['u8']);
      expect(s.count('u8', 'c1', 3600)).toBe(32);
      expect(s.count('u8', 'c1', 86_400)).toBe(32);
      await s.close();
    });
  });
}

contract('lru-cache', (clock) => createLocalFrequencyStore({ clock }));

describe('local frequency store', () => {
  it('answers a run of counts for one user from one lookup, and still sees every record and eviction', async () => {
    let now = T0;
    const s = createLocalFrequencyStore({ clock: () => now, maxUsers: 2 });
    await s.record('a', 'c1');
    now += 1000;
    await s.record('b', 'c1');
    expect([s.count('b', 'c1', 60), s.count('a', 'c1', 60), s.count('a', 'c2', 60)]).toEqual([1, 1, 0]);
    now += 1000;
    await s.record('a', 'c2');
    expect(s.count('a', 'c2', 60)).toBe(1);
    // b's impression is now the one that lapses first: recording c drops b, not a.
    await s.record('c', 'c1');
    expect([s.count('a', 'c1', 60), s.count('b', 'c1', 60), s.count('c', 'c1', 60)]).toEqual([1, 0, 1]);
    // A user recorded for the first time after a count of 0 for it.
    expect(s.count('d', 'c1', 60)).toBe(0);
    await s.record('d', 'c1');
    expect(s.count('d', 'c1', 60)).toBe(1);
    await s.close();
    expect(s.count('d', 'c1', 60)).toBe(0);
  });
});

describe('the local store when full', () => {
  const windows: Record<string, number> = { capped: 86_400, hourly: 3600 };
  const windowSec = (c: string) => windows[c] ?? 0;

  it('drops users whose impressions have all left their windows before a capped user, however recently they came', async () => {
    let now = T0;
    let evictedLive = 0;
    const s = createLocalFrequencyStore({ clock: () => now, maxUsers: 3, windowSec, onEvictLive: () => evictedLive++ });
    await s.record('victim', 'capped');
    await s.record('hourly', 'hourly');
    now += 2 * 3600_000;
    // Thousands of users after them, each seen by a campaign without a cap.
    for (let i = 0; i < 2000; i++) {
      now += 1000;
      await s.record(`other-${i}`, 'uncapped');
    }
    // The hourly cap's user went first (its window had passed), the capped one stays.
    expect([s.count('victim', 'capped', 86_400), s.count('hourly', 'hourly', 86_400), s.count('other-1999', 'uncapped', 60)]).toEqual([1, 0, 1]);
    expect(evictedLive).toBe(0);
    await s.close();
  });

  it('when every user it holds is capped, drops the one whose caps lapse first, and says so', async () => {
    let now = T0;
    let evictedLive = 0;
    const s = createLocalFrequencyStore({ clock: () => now, maxUsers: 2, windowSec, onEvictLive: () => evictedLive++ });
    await s.record('day', 'capped');
    now += 60_000;
    await s.record('hour', 'hourly');
    now += 60_000;
    await s.record('new', 'capped');
    // 'hour' was recorded later, but its cap ends first (T0 + 61 min, against T0 + 24 h).
    expect([s.count('day', 'capped', 86_400), s.count('hour', 'hourly', 3600), s.count('new', 'capped', 86_400)]).toEqual([1, 0, 1]);
    expect(evictedLive).toBe(1);
    await s.close();
  });

  it('full of capped users, keeps them all over a new user seen only by an uncapped campaign', async () => {
    let now = T0;
    let evictedLive = 0;
    const s = createLocalFrequencyStore({ clock: () => now, maxUsers: 2, windowSec, onEvictLive: () => evictedLive++ });
    await s.record('day', 'capped');
    await s.record('hour', 'hourly');
    now += 60_000;
    await s.record('passer-by', 'uncapped');
    expect([s.count('day', 'capped', 86_400), s.count('hour', 'hourly', 3600), s.count('passer-by', 'uncapped', 3600)]).toEqual([1, 1, 0]);
    expect(evictedLive).toBe(0);
    await s.close();
  });

  it('orders users by the windows of now: a cap a reload lengthened keeps its users', async () => {
    let now = T0;
    const w: Record<string, number> = { a: 3600, b: 3600 };
    const s = createLocalFrequencyStore({ clock: () => now, maxUsers: 2, windowSec: (c) => w[c] ?? 0 });
    await s.record('u-a', 'a');
    now += 60_000;
    await s.record('u-b', 'b');
    now += 2 * 3600_000;
    // Both impressions are past an hour; a's cap now runs for a day, so u-a is capped and u-b is not.
    w.a = 86_400;
    s.windowsChanged();
    await s.record('u-c', 'b');
    expect([s.count('u-a', 'a', 86_400), s.count('u-b', 'b', 86_400)]).toEqual([1, 0]);
    await s.close();
  });

  it('orders users by the windows of now: the users of a cap a reload shortened go before users still capped', async () => {
    let now = T0;
    let evictedLive = 0;
    const w: Record<string, number> = { a: 86_400, b: 86_400 };
    const s = createLocalFrequencyStore({ clock: () => now, maxUsers: 100, windowSec: (c) => w[c] ?? 0, onEvictLive: () => evictedLive++ });
    for (let i = 0; i < 50; i++) await s.record(`u-a${i}`, 'a');
    now += 60_000;
    for (let i = 0; i < 50; i++) await s.record(`u-b${i}`, 'b');
    now += 2 * 3600_000;
    // b's cap now runs for an hour: its users' caps have lapsed, a's hold for most of a day.
    w.b = 3600;
    s.windowsChanged();
    for (let i = 0; i < 50; i++) await s.record(`new-${i}`, 'a');
    expect(evictedLive).toBe(0);
    expect([s.count('u-a0', 'a', 86_400), s.count('u-a49', 'a', 86_400), s.count('u-b0', 'b', 86_400)]).toEqual([1, 1, 0]);
    await s.close();
  });
});

if (client === null) {
  if (process.env.CI === 'true') {
    it(`Redis frequency store needs Redis at ${url} (CI=true: failure, not skip)`, () => {
      expect.fail(`Redis unreachable at ${url}`);
    });
  } else {
    console.warn(`[freqcap] Redis store skipped: no Redis at ${url} (CI=true makes this a failure)`);
  }
} else {
  let n = 0;
  afterAll(() => dropKeysAndQuit(client, prefix));
  contract('Redis behind lru-cache', (clock) =>
    createRedisFrequencyStore({ clock, now: clock, client, keyPrefix: `${prefix}${n++}:`, localTtlMs: 60_000 }),
  );

  it('shares impressions between bidders after a warm', async () => {
    const now = T0;
    const keyPrefix = `${prefix}${n++}:`;
    const a = createRedisFrequencyStore({ clock: () => now, now: () => now, client, keyPrefix, localTtlMs: 60_000 });
    const b = createRedisFrequencyStore({ clock: () => now, now: () => now, client, keyPrefix, localTtlMs: 60_000 });
    await a.warm(['u1']);
    await b.warm(['u1']);
    await a.record('u1', 'c1');
    expect(a.count('u1', 'c1', 60)).toBe(1);
    // b trusts its cached view until it expires: the documented staleness.
    expect(b.count('u1', 'c1', 60)).toBe(0);
    for (let i = 0; i < 40; i++) await a.record('u1', 'c2');
    const c = createRedisFrequencyStore({ clock: () => now + 1000, now: () => 0, client, keyPrefix });
    await c.warm(['u1', 'u2']);
    expect(c.count('u1', 'c1', 60)).toBe(1);
    expect(c.count('u1', 'c1', 1)).toBe(0);
    expect(c.count('u1', 'c2', 60)).toBe(32);
    expect(c.count('u2', 'c1', 60)).toBe(0);
  });
}

describe('the local store across a restart', () => {
  it('keeps the counts a run had at close, minus what the window has since forgotten', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'freqcaps-'));
    const path = join(dir, 'sub', 'freqcaps.json');
    try {
      let now = T0;
      const a = createLocalFrequencyStore({ clock: () => now, path });
      await a.record('u1', 'c1');
      now += 3_600_000;
      await a.record('u1', 'c1');
      await a.record('u2', 'c2');
      await a.close();
      now += 60_000;
      const b = createLocalFrequencyStore({ clock: () => now, path, maxWindowSec: 3_600 + 30 });
      // The first impression is past b's longest window: forgotten; the others count.
      expect(b.count('u1', 'c1', 86_400)).toBe(1);
      expect(b.count('u2', 'c2', 86_400)).toBe(1);
      expect(b.count('u3', 'c1', 86_400)).toBe(0);
      await b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('loads no version 1 file: its user keys are of before the keys named the kind of id, and no request has them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'freqcaps-'));
    const path = join(dir, 'freqcaps.json');
    const warnings: string[] = [];
    try {
      writeFileSync(path, JSON.stringify({ version: 1, users: [['u1', [['c1', [T0]]]]] }));
      const s = createLocalFrequencyStore({ clock: () => T0, path, logger: { warn: (_: object, msg: string) => void warnings.push(msg) } });
      expect(s.count('u1', 'c1', 3600)).toBe(0);
      expect(warnings).toEqual(['frequency caps file of an earlier version, whose user keys no request has any more: caps start empty']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('restored into a smaller store, keeps the users whose impressions lapse last, and says how many it dropped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'freqcaps-'));
    const path = join(dir, 'freqcaps.json');
    const warnings: object[] = [];
    try {
      let now = T0;
      const a = createLocalFrequencyStore({ clock: () => now, path });
      for (const u of ['u1', 'u2', 'u3']) {
        await a.record(u, 'c1');
        now += 1000;
      }
      await a.close();
      const b = createLocalFrequencyStore({ clock: () => now, path, maxUsers: 2, logger: { warn: (o: object) => void warnings.push(o) } });
      expect(['u1', 'u2', 'u3'].map((u) => b.count(u, 'c1', 3600))).toEqual([0, 1, 1]);
      expect(warnings).toEqual([{ file: path, dropped: 1, maxUsers: 2 }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('starts empty, saying so once, from a file that is not its snapshot; and saves over it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'freqcaps-'));
    const path = join(dir, 'freqcaps.json');
    const warnings: string[] = [];
    const logger = { warn: (_: object, msg: string) => void warnings.push(msg) };
    try {
      writeFileSync(path, '{"version": 2, "campaigns": [], "users": 7}');
      const s = createLocalFrequencyStore({ clock: () => T0, path, logger });
      expect(warnings).toEqual(['frequency caps file is not a snapshot: caps start empty']);
      await s.record('u1', 'c1');
      await s.close();
      const saved = JSON.parse(readFileSync(path, 'utf8'));
      expect([saved.campaigns, saved.users]).toEqual([['c1'], ['u1', [0, 1, T0]]]);
      // No file at all is a first start: no warning.
      createLocalFrequencyStore({ clock: () => T0, path: join(dir, 'none.json'), logger });
      expect(warnings).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
