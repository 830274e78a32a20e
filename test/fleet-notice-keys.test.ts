import { afterAll, describe, expect, it } from 'vitest';
import { agree, createFleetNoticeKeys, noticeKeyId, noticeKeysOf, type FleetNoticeKeys, type NoticeKeys } from '../src/fleet/notice-keys.js';
import { connectRedis, dropKeysAndQuit, REDIS_URL } from './helpers/redis.js';

/**
 * The fleet check of notice keys (src/fleet/notice-keys.ts). Before it, a process of a fleet whose
 * NOTICE_SECRET differed from its siblings' started without a word, and refused their win and
 * billing notices as forged (403: billed, never recorded), or had its own refused by them.
 * Against a real Redis (a database of 10-15, a key prefix of this run); in CI (CI=true) an
 * unreachable Redis fails the run, elsewhere the Redis suites are skipped with a note.
 */
const OLD = 'fleet-old-secret-0123456789';
const NEW = 'fleet-new-secret-9876543210';
const OTHER = 'fleet-other-secret-5555555555';

describe('the notice-key rule', () => {
  const old: NoticeKeys = noticeKeysOf(OLD, []);
  const step1: NoticeKeys = noticeKeysOf(OLD, [NEW]);
  const step2: NoticeKeys = noticeKeysOf(NEW, [OLD]);
  const done: NoticeKeys = noticeKeysOf(NEW, []);

  it('names a secret by an id that is not the secret, the same on every process', () => {
    expect(noticeKeyId(OLD)).toMatch(/^[0-9a-f]{24}$/);
    expect(noticeKeyId(OLD)).toBe(noticeKeyId(OLD));
    expect(noticeKeyId(OLD)).not.toBe(noticeKeyId(NEW));
    expect(step2).toEqual({ sign: noticeKeyId(NEW), accept: [noticeKeyId(NEW), noticeKeyId(OLD)] });
  });

  it('holds for every pair of processes at every step of the two-step rotation', () => {
    // Step 1 rolls over a fleet on the old secret; step 2 over a fleet at step 1; then the old secret is dropped.
    for (const [a, b] of [[old, old], [old, step1], [step1, step1], [step1, step2], [step2, step2], [step2, done], [done, done]]) {
      expect(agree(a, b)).toBe(true);
      expect(agree(b, a)).toBe(true);
    }
  });

  it('fails where one signs with a key the other does not accept, either way', () => {
    // A one-step rotation: the process not yet restarted refuses what the new secret signs.
    expect(agree(old, step2)).toBe(false);
    // Step 2 begun before step 1 ended everywhere, and the old secret dropped too early.
    expect(agree(old, done)).toBe(false);
    expect(agree(step1, done)).toBe(false);
    expect(agree(noticeKeysOf(OTHER, []), old)).toBe(false);
    // Accepting the other's key is not enough: each must accept the key the other signs with.
    expect(agree(noticeKeysOf(OTHER, [OLD]), old)).toBe(false);
  });
});

const base = REDIS_URL.replace(/\/\d+$/, '');
const url = `${base}/${10 + (process.pid % 6)}`;
const client = await connectRedis(url);
const prefix = `test:fleet-nk:${process.pid}:${Date.now().toString(36)}:`;

if (client === null) {
  if (process.env.CI === 'true') {
    describe('fleet notice keys on Redis', () => {
      it(`needs Redis at ${url} (CI=true: an absent Redis is a failure, not a skip)`, () => {
        expect.fail(`Redis unreachable at ${url}`);
      });
    });
  } else {
    console.warn(`[fleet-notice-keys] skipped: no Redis at ${url} (set REDIS_URL, or CI=true to make this a failure)`);
    describe.skip(`fleet notice keys on Redis (no Redis at ${url})`, () => {
      it('skipped', () => {});
    });
  }
} else {
  afterAll(() => dropKeysAndQuit(client, prefix));
  let n = 0;
  const silent = { error: () => {}, warn: () => {}, info: () => {} };

  /** A fleet on a key prefix of its own; each member a module instance with its secrets, its gauge reading and its log. */
  const fleet = () => {
    const keyPrefix = `${prefix}${n++}:`;
    const members: FleetNoticeKeys[] = [];
    const join = (secret: string, previous: string[] = [], o: { clock?: () => number; heartbeatMs?: number } = {}) => {
      const gauge = { value: -1 };
      const errors: string[] = [];
      const m = createFleetNoticeKeys({
        client,
        keyPrefix,
        keys: noticeKeysOf(secret, previous),
        heartbeatMs: o.heartbeatMs ?? 60_000,
        clock: o.clock,
        onMismatch: (v) => (gauge.value = v),
        logger: { ...silent, error: (_: object, msg: string) => errors.push(msg) },
      });
      members.push(m);
      return { m, gauge, errors };
    };
    return { keyPrefix, join, close: () => Promise.all(members.map((m) => m.close())) };
  };

  describe('fleet notice keys on Redis', () => {
    it('two processes with the same secret agree: both start, neither counts the other', async () => {
      const f = fleet();
      const a = f.join(OLD);
      const b = f.join(OLD);
      expect(await a.m.start()).toBeNull();
      expect(await b.m.start()).toBeNull();
      expect(await a.m.beat()).toEqual([]);
      expect(a.gauge.value).toBe(0);
      expect(b.gauge.value).toBe(0);
      expect(await client.hlen(`${f.keyPrefix}nk`)).toBe(2);
      // A graceful stop withdraws the entry at once.
      await f.close();
      expect(await client.hlen(`${f.keyPrefix}nk`)).toBe(0);
    });

    it('a second process with another secret is refused at start, and the first counts it, logging the change once', async () => {
      const f = fleet();
      const a = f.join(OLD);
      const b = f.join(OTHER);
      expect(await a.m.start()).toBeNull();
      const refusal = await b.m.start();
      expect(refusal).toMatch(/disagrees with 1 running process of the fleet/);
      expect(refusal).toContain('Rotating the notice secret');
      // The secrets are never written anywhere.
      expect(refusal).not.toContain(OLD);
      expect(JSON.stringify(await client.hgetall(`${f.keyPrefix}nk`))).not.toMatch(/fleet-(old|other)-secret/);
      const bad = await a.m.beat();
      expect(bad.map((s) => s.refused)).toEqual([true]);
      expect(a.gauge.value).toBe(1);
      await a.m.beat();
      expect(a.errors).toHaveLength(1);
      expect(a.errors[0]).toMatch(/the fleet disagrees on the notice keys: 1 other process/);
      // A process started with the fleet's secret after the refusal is not refused on its account.
      const c = f.join(OLD);
      expect(await c.m.start()).toBeNull();
      await f.close();
    });

    it('a correct two-step rotation passes at every step, a one-step one is refused', async () => {
      const f = fleet();
      // Two processes on the old secret; each restart withdraws the old entry, as a graceful stop does.
      let p1 = f.join(OLD);
      let p2 = f.join(OLD);
      expect(await p1.m.start()).toBeNull();
      expect(await p2.m.start()).toBeNull();
      const restart = async (p: typeof p1, secret: string, previous: string[]) => {
        await p.m.close();
        const next = f.join(secret, previous);
        return { next, refusal: await next.m.start() };
      };
      // One step (new secret, old as previous) while p2 still knows the old one alone: refused.
      const wrong = await restart(p1, NEW, [OLD]);
      expect(wrong.refusal).toMatch(/disagrees with 1 running process/);
      await wrong.next.m.close();
      for (const [secret, previous] of [[OLD, [NEW]], [NEW, [OLD]], [NEW, []]] as const) {
        const r1 = await restart(p1, secret, [...previous]);
        expect(r1.refusal, `${secret} / ${previous} first`).toBeNull();
        p1 = r1.next;
        const r2 = await restart(p2, secret, [...previous]);
        expect(r2.refusal, `${secret} / ${previous} second`).toBeNull();
        p2 = r2.next;
        expect(await p1.m.beat()).toEqual([]);
        expect(p1.gauge.value).toBe(0);
      }
      await f.close();
    });

    it('a stale entry (its lease ended) is ignored and removed', async () => {
      const f = fleet();
      // A process that stopped without withdrawing its entry, an hour ago, with another secret.
      const gone = f.join(OTHER, [], { clock: () => Date.now() - 3_600_000, heartbeatMs: 1000 });
      expect(await gone.m.start()).toBeNull();
      expect(await client.hlen(`${f.keyPrefix}nk`)).toBe(1);
      const a = f.join(OLD);
      expect(await a.m.start()).toBeNull();
      expect(await a.m.beat()).toEqual([]);
      expect(a.gauge.value).toBe(0);
      expect(Object.keys(await client.hgetall(`${f.keyPrefix}nk`))).toHaveLength(1);
      // Within its lease the same entry is live, and counted.
      const live = f.join(OTHER, [], { clock: () => Date.now() - 1000, heartbeatMs: 60_000 });
      expect(await live.m.start()).toMatch(/disagrees with 1 running process/);
      await f.close();
    });
  });
}
