import { Redis } from 'ioredis';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { Logger } from 'pino';
import type { Settings } from '../src/config/settings.js';
import type { Settled } from '../src/types.js';
import { createRedisLedger } from '../src/ledger/index.js';
import { openLedger } from '../src/ledger/open.js';
import { runLedgerSuite } from './ledger.suite.js';
import { connectRedis, describeWithRedis, dropKeysAndQuit, REDIS_URL } from './helpers/redis.js';

/**
 * The shared ledger suite against a real Redis (REDIS_URL, default the machine's 127.0.0.1:6379).
 * In CI (CI=true) an unreachable Redis fails the run; elsewhere the suite is skipped with a note.
 */
const url = REDIS_URL;
const prefix = `test:ledger:${process.pid}:${Date.now().toString(36)}:`;

const client = await connectRedis(url);
// Ledgers that log what the test provokes (a Redis without persistence, disagreeing rules).
const quiet = { warn: () => {} };

describeWithRedis('Redis ledger', url, client, () => {
  let n = 0;
  afterAll(() => dropKeysAndQuit(client, prefix));
  runLedgerSuite(
    'Redis',
    () => {
      const keyPrefix = `${prefix}${n++}:`;
      return (o) => createRedisLedger({ ...o, client, keyPrefix });
    },
    { propertyRuns: 25, durable: true },
  );

  describe('Redis ledger specifics', () => {
    it('with serverClock, a bidder whose clock runs ahead does not end the others\' reservations', async () => {
      const keyPrefix = `${prefix}${n++}:`;
      const at = Date.now();
      const make = (skewMs: number, serverClock: boolean) =>
        createRedisLedger({ client, clock: () => at + skewMs, budgets: { c1: { dailyUsd: 1 } }, reservationTtlMs: 10_000, keyPrefix: `${keyPrefix}${serverClock}:`, serverClock });
      for (const serverClock of [true, false]) {
        const a = await make(0, serverClock);
        const ahead = await make(60_000, serverClock);
        expect(await a.reserve([{ bidId: 'a1', campaignId: 'c1', amountUsd: 1, expiresAtMs: at + 10_000 }])).toEqual([true]);
        // A minute ahead, its own clock says a1's hold is over; Redis's says it is not.
        const got = await ahead.reserve([{ bidId: 'b1', campaignId: 'c1', amountUsd: 1, expiresAtMs: at + 70_000 }]);
        expect(got, `serverClock ${serverClock}`).toEqual([!serverClock]);
        expect(await a.bidOutcome('a1')).toBe(serverClock ? 'held' : 'expired');
      }
    });

    it("with serverClock, a bidder whose clock lags Redis's (a step it absorbs) still holds for the whole TTL", async () => {
      const keyPrefix = `${prefix}${n++}:`;
      const behind = Date.now() - 11 * 60_000;
      // A lifetime budget as well: in the first 11 minutes of a UTC day the lagging clock's day is
      // the day before, whose daily budget the other's request does not draw on.
      const budgets = { c1: { dailyUsd: 1, lifetimeUsd: 1 } };
      const lagging = await createRedisLedger({ client, clock: () => behind, budgets, reservationTtlMs: 600_000, keyPrefix, serverClock: true });
      const other = await createRedisLedger({ client, clock: () => Date.now(), budgets, reservationTtlMs: 600_000, keyPrefix, serverClock: true });
      // Eleven minutes behind Redis, a ten-minute hold by its own clock has ended before it starts.
      expect(await lagging.reserve([{ bidId: 'l1', campaignId: 'c1', amountUsd: 1, expiresAtMs: behind + 600_000 }])).toEqual([true]);
      expect(await lagging.bidOutcome('l1')).toBe('held');
      expect(await other.reserve([{ bidId: 'o1', campaignId: 'c1', amountUsd: 1, expiresAtMs: Date.now() + 600_000 }])).toEqual([false]);
    });

    it("a bidder whose clock lags the settling one's by less than the retention still finds the bid while it takes its notice as within the signed expiry", async () => {
      const keyPrefix = `${prefix}${n++}:`;
      const budgets = { c1: { dailyUsd: 1 } };
      // TTL 1 s, so bids are kept 2 s past their finish by the settling process's retention; the
      // second bidder's clock is 1.5 s behind. Clocks that move, as in a fleet (Redis's times the keys).
      const opts = { client, budgets, reservationTtlMs: 1000, keyPrefix, serverClock: true, logger: quiet };
      const ahead = await createRedisLedger({ ...opts, clock: () => Date.now() });
      const behind = await createRedisLedger({ ...opts, clock: () => Date.now() - 1500 });
      const x = Date.now() + 1000;
      expect(await ahead.reserve([{ bidId: 's1', campaignId: 'c1', amountUsd: 0.01, expiresAtMs: x }])).toEqual([true]);
      expect(await ahead.settle('s1', 0.01, 'win', 'c1', undefined, x)).toBe('settled');
      // 2.2 s on, the bid finished past the retention by the settling clock; by the lagging one
      // the billing notice is still within its signed expiry, so it comes vouched for.
      await new Promise((r) => setTimeout(r, 2200));
      expect(Date.now() - 1500).toBeLessThan(x);
      // At the win's price: confirmed, moving nothing.
      expect(await behind.settle('s1', 0.01, 'billing', 'c1', undefined, x)).toBe('confirmed');
      expect((await ahead.state('c1')).spentUsd).toBe(0.01);
      await ahead.close();
      await behind.close();
    });

    it('registers the rules of a 20,000-campaign catalog, and reserves against the last of them', async () => {
      const keyPrefix = `${prefix}${n++}:`;
      const budgets = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`c${i}`, { dailyUsd: 1 }]));
      // Before: one script with every campaign's arguments, which overflowed the stack here.
      const l = await createRedisLedger({ client, clock: () => Date.now(), budgets, reservationTtlMs: 10_000, keyPrefix, logger: quiet });
      expect(await l.reserve([{ bidId: 'big1', campaignId: 'c19999', amountUsd: 0.5, expiresAtMs: Date.now() + 10_000 }])).toEqual([true]);
      expect((await l.state('c19999')).budgetUsd).toBe(1);
      await l.close();
    }, 60_000);

    it('claims a settle whose reply was lost only when that very call was applied, and only once', async () => {
      const keyPrefix = `${prefix}${n++}:`;
      const own = new Redis(url, { commandTimeout: 100, maxRetriesPerRequest: 0, enableOfflineQueue: false });
      await new Promise((r) => own.once('ready', r));
      const opts = { clock: () => Date.now(), budgets: { c1: { dailyUsd: 1 } }, reservationTtlMs: 10_000, keyPrefix, logger: quiet };
      const a = await createRedisLedger({ ...opts, client: own });
      const b = await createRedisLedger({ ...opts, client });
      const hold = (bidId: string) => a.reserve([{ bidId, campaignId: 'c1', amountUsd: 0.01, expiresAtMs: Date.now() + 10_000 }]);
      const paused = async (f: () => Promise<unknown>) => {
        await client.call('CLIENT', 'PAUSE', '300', 'ALL');
        await expect(f()).rejects.toThrow();
        await new Promise((r) => setTimeout(r, 350));
      };
      try {
        // Applied past the timeout: a's claim gets what its call set, once; b's retry was a duplicate.
        expect(await hold('k1')).toEqual([true]);
        await paused(() => a.settle('k1', 0.006));
        expect(await b.settle('k1', 0.006)).toBe('duplicate');
        const s1 = { usd: NaN };
        expect(await a.claim!('k1', 'win', s1)).toBe('settled');
        expect(s1.usd).toBeCloseTo(0.006, 9);
        expect(await a.claim!('k1', 'win', { usd: NaN })).toBeUndefined();
        // A correction applied past the timeout is claimed as one, with the price it replaced,
        // though a later correction (another level) came since; a report of another level is not it.
        await paused(() => a.settle('k1', 0.004, 'billing'));
        expect(await a.claim!('k1', 'win', { usd: NaN })).toBeUndefined();
        const s2: Settled = { usd: NaN };
        expect(await a.claim!('k1', 'billing', s2)).toBe('corrected');
        expect([s2.usd, s2.previousUsd, s2.over]).toEqual([0.004, 0.006, false]);
        // A retry that fails too goes under the first call's name: the first call, applied, is still claimed.
        expect(await hold('k4')).toEqual([true]);
        await paused(() => a.settle('k4', 0.003));
        await paused(() => a.settle('k4', 0.003));
        expect(await a.settle('k4', 0.003)).toBe('duplicate');
        const s4 = { usd: NaN };
        expect(await a.claim!('k4', 'win', s4)).toBe('settled');
        expect(s4.usd).toBeCloseTo(0.003, 9);
        // Never sent (the connection down): b's settlement is not a's to claim.
        expect(await hold('k2')).toEqual([true]);
        const ended = new Promise((r) => own.once('end', r));
        own.disconnect();
        await ended;
        await expect(a.settle('k2', 0.005)).rejects.toThrow();
        expect(await b.settle('k2', 0.005)).toBe('settled');
        await own.connect();
        expect(await a.claim!('k2', 'win', { usd: NaN })).toBeUndefined();
        // Nothing failed: nothing to claim.
        expect(await a.claim!('k3', 'win', { usd: NaN })).toBeUndefined();
      } finally {
        own.disconnect();
      }
    });

    it("a billing confirmed at a win's price: a record of the version before (no mark, its once key b:<bid>) is a duplicate; one with neither is confirmed; a reply lost is claimed as 'confirmed'", async () => {
      const keyPrefix = `${prefix}${n++}:`;
      const own = new Redis(url, { commandTimeout: 100, maxRetriesPerRequest: 0, enableOfflineQueue: false });
      await new Promise((r) => own.once('ready', r));
      const opts = { clock: () => Date.now(), budgets: { c1: { dailyUsd: 1 } }, reservationTtlMs: 10_000, keyPrefix, logger: quiet };
      const a = await createRedisLedger({ ...opts, client: own });
      const b = await createRedisLedger({ ...opts, client });
      try {
        const until = Date.now() + 10_000;
        await a.reserve(['o1', 'o2', 'o3'].map((bidId) => ({ bidId, campaignId: 'c1', amountUsd: 0.01, expiresAtMs: until })));
        for (const id of ['o1', 'o2', 'o3']) expect(await a.settle(id, 0.008)).toBe('settled');
        // o1's billing logged by a process of the version before: its once key, the record unmarked.
        await client.set(`${keyPrefix}o:b:o1`, String(until), 'PX', 10_000);
        expect(await b.settle('o1', 0.008, 'billing')).toBe('duplicate');
        expect(await client.hget(`${keyPrefix}r:o1`, 'q')).toBeNull();
        // o2's, not yet billed then: confirmed, once, whichever process hears it.
        expect(await b.settle('o2', 0.008, 'billing')).toBe('confirmed');
        expect(await a.settle('o2', 0.008, 'billing')).toBe('duplicate');
        // The level stays the win's (the version before reads it): a billing that differs sets it.
        expect(await client.hget(`${keyPrefix}r:o2`, 'l')).toBe('1');
        expect(await a.settle('o2', 0.006, 'billing')).toBe('corrected');
        // o3's confirmation applied past the timeout: its retry is a duplicate, and the claim tells it was this call's.
        await client.call('CLIENT', 'PAUSE', '300', 'ALL');
        await expect(a.settle('o3', 0.008, 'billing')).rejects.toThrow();
        await new Promise((r) => setTimeout(r, 350));
        expect(await a.settle('o3', 0.008, 'billing')).toBe('duplicate');
        const s3 = { usd: NaN };
        expect(await a.claim!('o3', 'billing', s3)).toBe('confirmed');
        expect(s3.usd).toBeCloseTo(0.008, 9);
        expect(await a.claim!('o3', 'billing', { usd: NaN })).toBeUndefined();
        expect(await b.state('c1')).toMatchObject({ spentUsd: 0.022, overspentUsd: 0, reservedUsd: 0 });
      } finally {
        await a.close();
        await b.close();
        own.disconnect();
      }
    });

    it('on a reconnect restores the budget rules Redis lost, and leaves alone those another process set since', async () => {
      const keyPrefix = `${prefix}${n++}:`;
      const own = new Redis(url);
      const ready = () => new Promise((r) => own.once('ready', r));
      await ready();
      const a = await createRedisLedger({ client: own, clock: () => Date.now(), budgets: { c1: { dailyUsd: 1 } }, reservationTtlMs: 10_000, keyPrefix, logger: quiet });
      // Another process of the fleet reloads a lower budget.
      const b = await createRedisLedger({ client, clock: () => Date.now(), budgets: { c1: { dailyUsd: 1 } }, reservationTtlMs: 10_000, keyPrefix, logger: quiet });
      await b.configure({ c1: { dailyUsd: 0.01 } });
      const reconnect = async () => {
        const id = await own.client('ID');
        const back = ready();
        await client.client('KILL', 'ID', String(id));
        await back;
        // The restore is sent on 'ready'; a round trip on the same connection comes after it.
        await own.ping();
      };
      await reconnect();
      expect(await client.hget(`${keyPrefix}b:c1`, 'daily')).toBe('10000');
      // A Redis that lost its data: the rule comes back.
      await client.del(`${keyPrefix}b:c1`, `${keyPrefix}p:c1`);
      await reconnect();
      expect(await client.hgetall(`${keyPrefix}b:c1`)).toMatchObject({ daily: '1000000' });
      await a.close();
      await b.close();
      own.disconnect();
    });

    it('two bidders configured with different budgets enforce the smaller, say so with both values, and the larger once they agree', async () => {
      const keyPrefix = `${prefix}${n++}:`;
      const now = Date.UTC(2026, 0, 10, 12);
      const logs: Array<{ obj: Record<string, unknown>; msg: string }> = [];
      const logger = { warn: (obj: object, msg: string) => logs.push({ obj: obj as Record<string, unknown>, msg }) };
      const base = { client, clock: () => now, reservationTtlMs: 10_000, keyPrefix, logger };
      const hold = (bidId: string, amountUsd: number) => [{ bidId, campaignId: 'c1', amountUsd, expiresAtMs: now + 10_000 }];
      // The fleet runs on 1 USD a day; a replica on older policies (4 USD) starts on the same prefix.
      const fleet = await createRedisLedger({ ...base, budgets: { c1: { dailyUsd: 1 } } });
      const stale = await createRedisLedger({ ...base, budgets: { c1: { dailyUsd: 4 } } });
      expect(await stale.reserve(hold('s1', 0.8))).toEqual([true]);
      expect(await fleet.reserve(hold('f1', 0.5))).toEqual([false]);
      expect((await fleet.state('c1')).budgetUsd).toBe(1);
      const warned = logs.find((l) => l.msg.includes('different budgets'));
      expect(warned?.obj).toMatchObject({ campaign: 'c1', thisBidder: { dailyUsd: 4 }, others: [{ dailyUsd: 1 }], enforced: { dailyUsd: 1 } });
      // The other way round: a reload that lowers the budget on one bidder holds the whole fleet to it.
      await fleet.configure({ c1: { dailyUsd: 0.5 } });
      expect((await stale.state('c1')).budgetUsd).toBe(0.5);
      // Once every bidder has the new policies, the raise takes effect.
      await fleet.configure({ c1: { dailyUsd: 4 } });
      expect((await fleet.state('c1')).budgetUsd).toBe(4);
      expect(logs.at(-1)?.msg).toMatch(/agree on the budget again/);
      // A bidder that stops withdraws its rule: the one left runs on its own.
      await fleet.configure({ c1: { dailyUsd: 2 } });
      expect((await stale.state('c1')).budgetUsd).toBe(2);
      await fleet.close();
      await stale.configure({ c1: { dailyUsd: 4 } });
      expect((await stale.state('c1')).budgetUsd).toBe(4);
      await stale.close();
    });

    it('a bidder that died holds the fleet to its rule only until its lease runs out', async () => {
      const keyPrefix = `${prefix}${n++}:`;
      const base = { clock: () => Date.now(), reservationTtlMs: 10_000, keyPrefix, logger: quiet };
      const conn = new Redis(url);
      // A lease long enough that the second ledger opens within it on a loaded host (300 ms ran
      // out first under CI's load, reading 1 where 0.1 is right).
      const lease = 2_000;
      const dead = await createRedisLedger({ ...base, client: conn, budgets: { c1: { dailyUsd: 0.1 } }, ruleLeaseMs: lease });
      // Gone without closing its ledger: its rule is not withdrawn, only no longer renewed.
      conn.disconnect();
      const alive = await createRedisLedger({ ...base, client, budgets: { c1: { dailyUsd: 1 } } });
      expect((await alive.state('c1')).budgetUsd).toBe(0.1);
      await new Promise((r) => setTimeout(r, lease + 100));
      await alive.configure({ c1: { dailyUsd: 1 } });
      expect((await alive.state('c1')).budgetUsd).toBe(1);
      await dead.close();
      await alive.close();
    });

    it("keeps a bid's record twice the notice TTL past its end or its notices' expiry, whichever is later, not a day; a notice after that moves nothing", async () => {
      const keyPrefix = `${prefix}${n++}:`;
      const now = Date.UTC(2026, 0, 10, 12);
      const ttl = 60_000;
      const settings = { noticeTtlMs: ttl, ledger: { keyPrefix } } as Settings;
      const open = () => openLedger({ settings, redis: client, clock: () => now, serverClock: false, budgets: { c1: { dailyUsd: 1 } }, logger: quiet as unknown as Logger });
      const a = await open();
      expect(await a.reserve([{ bidId: 'r1', campaignId: 'c1', amountUsd: 0.5, expiresAtMs: now + ttl }])).toEqual([true]);
      // Held: until its expiry, then the retention.
      const held = await client.pttl(`${keyPrefix}r:r1`);
      expect(held).toBeGreaterThan(2 * ttl);
      expect(held).toBeLessThanOrEqual(3 * ttl);
      // Settled at once: until its expiry still (a notice of it is heard until then), then the retention.
      expect(await a.settle('r1', 0.2)).toBe('settled');
      const settled = await client.pttl(`${keyPrefix}r:r1`);
      expect(settled).toBeGreaterThan(2 * ttl);
      expect(settled).toBeLessThanOrEqual(3 * ttl);
      // Once Redis has dropped it, a repeat of the notice past its expiry (it comes without the
      // campaign: src/notices) reaches another bidder and is answered unknown, counted nowhere.
      await client.del(`${keyPrefix}r:r1`);
      const b = await open();
      expect(await b.settle('r1', 0.2)).toBe('unknown');
      expect((await b.state('c1')).spentUsd).toBeCloseTo(0.2, 9);
      await a.close();
      await b.close();
    });

    it('sends all reservations of a bid request in one round trip', async () => {
      const now = Date.UTC(2026, 0, 10, 12);
      const ledger = await createRedisLedger({
        client,
        clock: () => now,
        budgets: { c1: { dailyUsd: 1 } },
        reservationTtlMs: 10_000,
        keyPrefix: `${prefix}${n++}:`,
      });
      const items = Array.from({ length: 20 }, (_, i) => ({
        bidId: `b${i}`,
        campaignId: 'c1',
        amountUsd: 0.01,
        expiresAtMs: now + 10_000,
      }));
      const sent = vi.spyOn(client, 'sendCommand');
      expect((await ledger.reserve(items)).every(Boolean)).toBe(true);
      // The first call on a connection sends the script body (EVAL), later ones its hash.
      expect(await ledger.reserve(items.map((it) => ({ ...it, bidId: `again-${it.bidId}` })))).toHaveLength(20);
      expect(sent.mock.calls.map(([c]) => c.name)).toEqual(['eval', 'evalsha']);
      sent.mockRestore();
      await ledger.close();
    });

    it('reads the states of many campaigns 200 a call, one call at a time', async () => {
      const now = Date.UTC(2026, 0, 10, 12);
      const ids = Array.from({ length: 450 }, (_, i) => `c${i}`);
      const ledger = await createRedisLedger({ client, clock: () => now, budgets: Object.fromEntries(ids.map((id) => [id, { dailyUsd: 1 }])), reservationTtlMs: 10_000, keyPrefix: `${prefix}${n++}:` });
      // Loads the script, should no test have yet: every call below is then one round trip.
      await ledger.states(['c0']);
      const send = client.sendCommand.bind(client);
      const perCall: number[] = [];
      let inFlight = 0;
      let most = 0;
      const sent = vi.spyOn(client, 'sendCommand').mockImplementation((c, stream) => {
        perCall.push(c.args.filter((a) => typeof a === 'string' && /^c\d+$/.test(a)).length);
        most = Math.max(most, ++inFlight);
        const reply = send(c, stream) as Promise<unknown>;
        const done = () => inFlight--;
        reply.then(done, done);
        return reply;
      });
      const states = await ledger.states(ids);
      sent.mockRestore();
      expect(states).toHaveLength(450);
      expect(states.every((s) => s.budgetUsd === 1)).toBe(true);
      expect(perCall).toEqual([200, 200, 50]);
      // The bid path's scripts go between the calls, not behind all of them.
      expect(most).toBe(1);
      await ledger.close();
    });

    it("a read of many campaigns outlasts the connection's command timeout, as its size asks; one campaign's does not", async () => {
      const now = Date.UTC(2026, 0, 10, 12);
      const ids = Array.from({ length: 200 }, (_, i) => `c${i}`);
      const ledger = await createRedisLedger({ url, commandTimeoutMs: 30, clock: () => now, budgets: Object.fromEntries(ids.map((id) => [id, { dailyUsd: 1 }])), reservationTtlMs: 10_000, keyPrefix: `${prefix}${n++}:` });
      await ledger.states(ids);
      // Another client's script holds Redis for 150 ms: past one campaign's timeout (30 + 5 ms),
      // within 200 campaigns' (30 + 200 x 5 ms).
      const busy = client.eval("local t = redis.call('TIME') local stop = t[1] * 1e6 + t[2] + ARGV[1] * 1e3 repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] >= stop return 1", 0, 150);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const [one, many] = await Promise.allSettled([ledger.state('c0'), ledger.states(ids)]);
      await busy;
      expect(one).toMatchObject({ status: 'rejected', reason: { message: 'Command timed out' } });
      expect(many).toMatchObject({ status: 'fulfilled', value: { length: 200 } });
      await ledger.close();
    });

    it('answers a second settle or release of a bid it finished without a round trip', async () => {
      const now = Date.UTC(2026, 0, 10, 12);
      const base = { client, clock: () => now, budgets: { c1: { dailyUsd: 1 } }, reservationTtlMs: 10_000 };
      const keyPrefix = `${prefix}${n++}:`;
      const a = await createRedisLedger({ ...base, keyPrefix });
      const b = await createRedisLedger({ ...base, keyPrefix });
      const hold = (bidId: string) => ({ bidId, campaignId: 'c1', amountUsd: 0.2, expiresAtMs: now + 10_000 });
      expect(await a.reserve([hold('w'), hold('l'), hold('lw')])).toEqual([true, true, true]);
      expect(await a.settle('w', 0.1)).toBe('settled');
      await a.release('l');
      await a.release('lw');
      const sent = vi.spyOn(client, 'sendCommand');
      expect(await a.settle('w', 0.1)).toBe('duplicate'); // the billing notice after the win
      expect(await a.settle('w', 0.05)).toBe('duplicate');
      await a.release('w');
      await a.release('l');
      expect(sent).not.toHaveBeenCalled();
      // A win after a loss notice still reaches Redis (it may settle); another process asks Redis too.
      expect(await a.settle('lw', 0.1)).toBe('settled');
      expect(await b.settle('w', 0.1)).toBe('duplicate');
      expect(sent).toHaveBeenCalledTimes(2);
      sent.mockRestore();
      expect((await a.state('c1')).spentUsd).toBeCloseTo(0.2, 9);
      await a.close();
      await b.close();
    });

    it('connects from a URL, and says plainly when it cannot', async () => {
      const now = Date.UTC(2026, 0, 10, 12);
      const base = { clock: () => now, budgets: { c1: { dailyUsd: 1 } }, reservationTtlMs: 10_000 };
      const ledger = await createRedisLedger({ ...base, url, keyPrefix: `${prefix}${n++}:` });
      expect(await ledger.reserve([{ bidId: 'b1', campaignId: 'c1', amountUsd: 0.5, expiresAtMs: now + 10_000 }])).toEqual([true]);
      await ledger.close();
      await expect(createRedisLedger({ ...base, url: 'redis://127.0.0.1:1', keyPrefix: 'x:' })).rejects.toThrow(
        /cannot connect to redis:\/\/127.0.0.1:1/,
      );
    });

    it('puts the budget rules back when Redis comes back without them', async () => {
      const now = Date.UTC(2026, 0, 10, 12);
      const keyPrefix = `${prefix}${n++}:`;
      const own = new Redis(url);
      const ledger = await createRedisLedger({
        client: own,
        clock: () => now,
        budgets: { c1: { dailyUsd: 1 } },
        reservationTtlMs: 10_000,
        keyPrefix,
      });
      await own.del(`${keyPrefix}b:c1`);
      expect(await ledger.reserve([{ bidId: 'b1', campaignId: 'c1', amountUsd: 0.5, expiresAtMs: now + 10_000 }])).toEqual([false]);
      const ready = new Promise((resolve) => own.once('ready', resolve));
      own.disconnect(true);
      await ready;
      await own.ping();
      expect(await ledger.reserve([{ bidId: 'b2', campaignId: 'c1', amountUsd: 0.5, expiresAtMs: now + 10_000 }])).toEqual([true]);
      await ledger.close();
      await own.quit();
    });

    it('shares budgets between bidders: two ledgers on one prefix never overspend together', async () => {
      const now = Date.UTC(2026, 0, 10, 12);
      const keyPrefix = `${prefix}${n++}:`;
      const opts = { client, clock: () => now, budgets: { c1: { dailyUsd: 1 } }, reservationTtlMs: 10_000, keyPrefix };
      const [a, b] = await Promise.all([createRedisLedger(opts), createRedisLedger(opts)]);
      const res = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          (i % 2 ? a : b).reserve([{ bidId: `b${i}`, campaignId: 'c1', amountUsd: 0.1, expiresAtMs: now + 10_000 }]),
        ),
      );
      expect(res.flat().filter(Boolean)).toHaveLength(10);
      await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? b : a).settle(`b${i}`, 0.1)));
      expect(await a.state('c1')).toMatchObject({ spentUsd: 1, reservedUsd: 0, budgetUsd: 1 });
      await Promise.all([a.close(), b.close()]);
    });
  });
});
