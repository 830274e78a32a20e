import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Budget, BudgetLedger, Reservation, Settled } from '../src/types.js';

/**
 * The ledger contract, run against every implementation (test/ledger.memory.test.ts,
 * test/ledger.journal.test.ts, test/ledger.redis.test.ts). `storage()` gives a fresh, empty store
 * (a journal directory, a Redis key prefix) and a factory that opens ledgers on it; opening a
 * second ledger on the same store is a restart. The suite closes what it opens.
 */
export interface LedgerFactoryOptions {
  clock: () => number;
  budgets: Record<string, Budget>;
  reservationTtlMs: number;
}
export type LedgerFactory = (opts: LedgerFactoryOptions) => Promise<BudgetLedger>;

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 10, 12);
const TTL = 10_000;

export interface SuiteOptions {
  propertyRuns: number;
  /** The store survives a restart (journal, Redis): the property test then restarts at random. */
  durable: boolean;
  /**
   * An implementation that forgets finished bids this long after they finish (the in-process
   * ledger: 2 x TTL) may then answer 'unknown' to their notices, moving nothing. Absent: it
   * remembers them for the whole run.
   */
  forgetsAfterMs?: number;
}

export function runLedgerSuite(name: string, storage: () => LedgerFactory, opts: SuiteOptions): void {
  describe(`ledger contract: ${name}`, () => {
    const open: BudgetLedger[] = [];
    let now = T0;
    const clock = () => now;
    const make = async (budgets: Record<string, Budget>) => {
      const ledger = await storage()({ clock, budgets, reservationTtlMs: TTL });
      open.push(ledger);
      return ledger;
    };
    afterEach(async () => {
      now = T0;
      await Promise.all(open.splice(0).map((l) => l.close()));
    });
    const res = (bidId: string, campaignId: string, amountUsd: number, ttl = TTL): Reservation => ({
      bidId,
      campaignId,
      amountUsd,
      expiresAtMs: now + ttl,
    });

    it('reserves while budget minus spend minus outstanding reservations covers the amount', async () => {
      const l = await make({ c1: { dailyUsd: 1 } });
      expect(await l.reserve([res('b1', 'c1', 0.4), res('b2', 'c1', 0.4), res('b3', 'c1', 0.4)])).toEqual([
        true,
        true,
        false,
      ]);
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0, reservedUsd: 0.8, budgetUsd: 1 });
      expect(await l.reserve([res('b4', 'c1', 0.2)])).toEqual([true]);
      expect(await l.reserve([res('b5', 'c1', 0.000001)])).toEqual([false]);
    });

    it('refuses unknown campaigns, repeated bid ids, non-positive amounts and past expiries', async () => {
      const l = await make({ c1: { dailyUsd: 1 } });
      expect(await l.reserve([res('b1', 'nope', 0.1)])).toEqual([false]);
      expect(await l.reserve([res('b1', 'c1', 0.1), res('b1', 'c1', 0.1)])).toEqual([true, false]);
      expect(await l.reserve([res('b2', 'c1', 0), res('b3', 'c1', -1), res('b4', 'c1', NaN)])).toEqual([
        false,
        false,
        false,
      ]);
      expect(await l.reserve([{ bidId: 'b5', campaignId: 'c1', amountUsd: 0.1, expiresAtMs: now }])).toEqual([false]);
      expect((await l.state('c1')).reservedUsd).toBe(0.1);
    });

    it('settles at the clearing price and frees the rest of the reservation', async () => {
      const l = await make({ c1: { dailyUsd: 1 } });
      await l.reserve([res('b1', 'c1', 0.5)]);
      expect(await l.settle('b1', 0.3)).toBe('settled');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.3, reservedUsd: 0, budgetUsd: 1 });
      expect(await l.reserve([res('b2', 'c1', 0.7)])).toEqual([true]);
      expect(await l.reserve([res('b3', 'c1', 0.01)])).toEqual([false]);
    });

    it('answers duplicate, unknown and over-reservation without moving money', async () => {
      const l = await make({ c1: { dailyUsd: 1 } });
      await l.reserve([res('b1', 'c1', 0.5), res('b2', 'c1', 0.2)]);
      expect(await l.settle('b2', 0.2000011)).toBe('over-reservation');
      expect(await l.settle('forged', 0.1)).toBe('unknown');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0, reservedUsd: 0.7, budgetUsd: 1 });
      expect(await l.settle('b1', 0.5)).toBe('settled');
      expect(await l.settle('b1', 0.5)).toBe('duplicate');
      expect(await l.settle('b1', 0.1)).toBe('duplicate');
      expect(await l.settle('b2', 0.2)).toBe('settled');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.7, reservedUsd: 0, budgetUsd: 1 });
    });

    it('releases on loss, idempotently, and ignores releases of unknown or settled bids', async () => {
      const l = await make({ c1: { dailyUsd: 1 } });
      await l.reserve([res('b1', 'c1', 0.6), res('b2', 'c1', 0.4)]);
      await l.release('b1');
      await l.release('b1');
      await l.release('nope');
      await l.settle('b2', 0.4);
      await l.release('b2');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.4, reservedUsd: 0, budgetUsd: 1 });
    });

    it('billed means recorded: stops counting expired reservations; a late win is spend while the budget has room, overspend past it, never lost', async () => {
      const l = await make({ c1: { dailyUsd: 1 } });
      await l.reserve([res('b1', 'c1', 0.6), res('b2', 'c1', 0.4)]);
      now += TTL;
      expect((await l.state('c1')).reservedUsd).toBe(0);
      expect(await l.reserve([res('b3', 'c1', 0.9)])).toEqual([true]);
      expect(await l.settle('b2', 0.1)).toBe('settled');
      expect(await l.settle('b1', 0.6)).toBe('overspend');
      expect(await l.settle('b1', 0.6)).toBe('duplicate');
      expect(await l.state('c1')).toEqual({ spentUsd: 0.1, reservedUsd: 0.9, budgetUsd: 1, overspentUsd: 0.6, spentBeforeUsd: 0, overspentBeforeUsd: 0 });
      // Overspend counts against the headroom: the budget is full until the reservation ends.
      expect(await l.reserve([res('b4', 'c1', 0.01)])).toEqual([false]);
    });

    it('billed means recorded: a win after a loss notice settles, as overspend once the room is taken', async () => {
      const l = await make({ c1: { dailyUsd: 1 } });
      await l.reserve([res('b1', 'c1', 0.5)]);
      await l.release('b1');
      expect(await l.settle('b1', 0.5)).toBe('settled');
      expect((await l.state('c1')).spentUsd).toBe(0.5);
      await l.reserve([res('b2', 'c1', 0.3)]);
      await l.release('b2');
      expect(await l.reserve([res('b3', 'c1', 0.5)])).toEqual([true]);
      expect(await l.settle('b2', 0.3)).toBe('overspend');
      expect(await l.state('c1')).toEqual({ spentUsd: 0.5, reservedUsd: 0.5, budgetUsd: 1, overspentUsd: 0.3, spentBeforeUsd: 0, overspentBeforeUsd: 0 });
    });

    it('the billing notice sets the price a win settled, once, down or up', async () => {
      const l = await make({ c1: { dailyUsd: 1 } });
      await l.reserve([res('b1', 'c1', 0.5), res('b2', 'c1', 0.2), res('b3', 'c1', 0.2)]);
      expect(await l.settle('b1', 0.4)).toBe('settled');
      expect(await l.settle('b1', 0.3)).toBe('duplicate');
      expect(await l.settle('b1', 0.3, 'billing')).toBe('corrected');
      expect(await l.settle('b1', 0.1, 'billing')).toBe('duplicate');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.3, reservedUsd: 0.4 });
      // What the exchange bills is what is recorded, above the win's price too.
      expect(await l.settle('b2', 0.05)).toBe('settled');
      expect(await l.settle('b2', 0.15, 'billing')).toBe('corrected');
      // The same price as the win confirms it: nothing moves, the first is 'confirmed' and a repeat
      // a duplicate; a billing that does differ still sets it, once.
      expect(await l.settle('b3', 0.2)).toBe('settled');
      expect(await l.settle('b3', 0.2, 'billing')).toBe('confirmed');
      expect(await l.settle('b3', 0.2, 'billing')).toBe('duplicate');
      expect(await l.settle('b3', 0.1, 'billing')).toBe('corrected');
      expect(await l.settle('b3', 0.15, 'billing')).toBe('duplicate');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.55, reservedUsd: 0 });
    });

    it('a render reported by the markup settles at the reserved amount; the exchange\'s notices set the price over it', async () => {
      const l = await make({ c1: { dailyUsd: 1 } });
      await l.reserve([res('m1', 'c1', 0.5), res('m2', 'c1', 0.2), res('m3', 'c1', 0.1)]);
      // The tracker's price, if it sent one, is not heard: it is public. The ledger says what it
      // settled at (the caller may be a process that never issued the bid).
      const settled = { usd: NaN };
      expect(await l.settle('m1', 0, 'markup', undefined, settled)).toBe('settled');
      expect(settled.usd).toBe(0.5);
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.5, reservedUsd: 0.3 });
      expect(await l.settle('m1', 0, 'markup')).toBe('duplicate');
      expect(await l.settle('m1', 0.25, 'win', undefined, settled)).toBe('corrected');
      expect(settled.usd).toBe(0.25);
      expect(await l.settle('m1', 0.2)).toBe('duplicate');
      expect(await l.settle('m1', 0.3, 'billing')).toBe('corrected');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.3, reservedUsd: 0.3 });
      // After the exchange's own notice, a render changes nothing.
      expect(await l.settle('m2', 0.15)).toBe('settled');
      expect(await l.settle('m2', 0, 'markup')).toBe('duplicate');
      // After the exchange's loss notice a render is not heard (the markup is public); the
      // exchange's own late win still is.
      await l.release('m3');
      expect(await l.settle('m3', 0, 'markup')).toBe('duplicate');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.45, reservedUsd: 0 });
      expect(await l.settle('m3', 0.05)).toBe('settled');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.5, reservedUsd: 0 });
      expect(await l.settle('nope', 0, 'markup')).toBe('unknown');
    });

    it("a render confirmed at its price by the exchange's notice takes that notice's authority: a later lower win notice does not set it", async () => {
      const open = storage();
      let l = await open({ clock, budgets: { c1: { dailyUsd: 1 } }, reservationTtlMs: TTL });
      try {
        await l.reserve([res('n1', 'c1', 0.012), res('n2', 'c1', 0.012), res('n3', 'c1', 0.012)]);
        // The reviewers' repro: the adm's impression tracker, its billing at the bid price, then a win notice saying 1.
        expect(await l.settle('n1', 0, 'markup')).toBe('settled');
        expect(await l.settle('n1', 0.012, 'billing')).toBe('confirmed');
        expect(await l.settle('n1', 0.012, 'billing')).toBe('duplicate');
        expect(await l.settle('n1', 0.001)).toBe('duplicate');
        expect((await l.state('c1')).spentUsd).toBe(0.012);
        // Confirmed by the win notice: a billing still sets it, a second win notice does not.
        expect(await l.settle('n2', 0, 'markup')).toBe('settled');
        expect(await l.settle('n2', 0.012)).toBe('duplicate');
        expect(await l.settle('n2', 0.002)).toBe('duplicate');
        expect(await l.settle('n2', 0.01, 'billing')).toBe('corrected');
        expect((await l.state('c1')).spentUsd).toBe(0.022);
        if (opts.durable) {
          // Kept across a restart (the journal's record, Redis's field).
          await l.settle('n3', 0, 'markup');
          await l.settle('n3', 0.012, 'billing');
          await l.close();
          l = await open({ clock, budgets: { c1: { dailyUsd: 1 } }, reservationTtlMs: TTL });
          expect(await l.settle('n3', 0.001)).toBe('duplicate');
          expect((await l.state('c1')).spentUsd).toBe(0.034);
        }
      } finally {
        await l.close();
      }
    });

    it("a billing at the price a win set is confirmed once, moving nothing; a repeat is a duplicate, after a restart too, and a billing that differs still sets it", async () => {
      const open = storage();
      const budgets = { c1: { dailyUsd: 1 } };
      let l = await open({ clock, budgets, reservationTtlMs: TTL });
      try {
        await l.reserve([res('q1', 'c1', 0.2), res('q2', 'c1', 0.2), res('q3', 'c1', 0.2)]);
        expect(await l.settle('q1', 0.15)).toBe('settled');
        expect(await l.settle('q1', 0.15, 'billing')).toBe('confirmed');
        expect(await l.settle('q1', 0.15, 'billing')).toBe('duplicate');
        expect(await l.settle('q1', 0.15)).toBe('duplicate');
        expect(await l.state('c1')).toMatchObject({ spentUsd: 0.15, reservedUsd: 0.4, overspentUsd: 0 });
        expect(await l.settle('q2', 0.1)).toBe('settled');
        expect(await l.settle('q2', 0.1, 'billing')).toBe('confirmed');
        expect(await l.settle('q3', 0.1)).toBe('settled');
        if (opts.durable) {
          // Kept across a restart (the journal's record, Redis's field); a bid won before it and
          // billed after it is confirmed then.
          await l.close();
          l = await open({ clock, budgets, reservationTtlMs: TTL });
          expect(await l.settle('q1', 0.15, 'billing')).toBe('duplicate');
          expect(await l.settle('q2', 0.1, 'billing')).toBe('duplicate');
          expect(await l.settle('q3', 0.1, 'billing')).toBe('confirmed');
          expect(await l.settle('q3', 0.1, 'billing')).toBe('duplicate');
        }
        // A confirmed price keeps the win's level: a billing saying otherwise sets it, once.
        expect(await l.settle('q2', 0.05, 'billing')).toBe('corrected');
        expect(await l.settle('q2', 0.1, 'billing')).toBe('duplicate');
        expect(await l.state('c1')).toMatchObject({ spentUsd: 0.3, reservedUsd: 0, overspentUsd: 0 });
      } finally {
        await l.close();
      }
    });

    it('a billed rise the budget has no room for turns the whole bid into overspend', async () => {
      const l = await make({ c1: { dailyUsd: 0.5 } });
      await l.reserve([res('r1', 'c1', 0.3), res('r2', 'c1', 0.2)]);
      expect(await l.settle('r1', 0.1)).toBe('settled');
      expect(await l.settle('r2', 0.2)).toBe('settled');
      expect(await l.reserve([res('r3', 'c1', 0.2)])).toEqual([true]);
      // No room left: the exchange bills 0.3 for r1 anyway, recorded apart from the spend allowed.
      // The caller is told what was replaced and where the bid now stands (its metrics follow).
      const settled: Settled = { usd: NaN };
      expect(await l.settle('r1', 0.3, 'billing', undefined, settled)).toBe('corrected');
      expect(settled).toEqual({ usd: 0.3, previousUsd: 0.1, wasOver: false, over: true });
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.2, overspentUsd: 0.3, reservedUsd: 0.2 });
      // A fall moves the bid's own account: r2 was spend within the budget.
      const fell: Settled = { usd: NaN };
      expect(await l.settle('r2', 0.1, 'billing', undefined, fell)).toBe('corrected');
      expect(fell).toEqual({ usd: 0.1, previousUsd: 0.2, wasOver: false, over: false });
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.1, overspentUsd: 0.3, reservedUsd: 0.2 });
    });

    it('a billing a micro-dollar off the price its win set confirms it, with no room left too (one price rounded twice)', async () => {
      // 0.5005 CPM is 500.49999999999994 micro-dollars in doubles (500) and the next double up
      // 500.50000000000006 (501): the billing raised the bid a micro-dollar, which a full budget
      // turned into the whole bid's overspend (1.2 % of 4-decimal prices one ulp up).
      const bits = new Float64Array(1);
      const word = new BigInt64Array(bits.buffer);
      const ulp = (x: number, by: bigint) => ((bits[0] = x), (word[0] += by), bits[0]);
      const l = await make({ c1: { dailyUsd: 0.001 } });
      await l.reserve([res('u1', 'c1', 0.0005005), res('u2', 'c1', 0.0005005)]);
      expect(await l.settle('u1', 0.5005 / 1000)).toBe('settled');
      expect(await l.settle('u2', 0.5005 / 1000)).toBe('settled');
      expect(await l.settle('u1', ulp(0.5005, 1n) / 1000, 'billing')).toBe('confirmed');
      expect(await l.settle('u2', ulp(0.5005, -1n) / 1000, 'billing')).toBe('confirmed');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.001, overspentUsd: 0 });
      // A render settles at the reservation; a billing a micro-dollar off confirms that price too.
      const m = await make({ c2: { dailyUsd: 0.0005 } });
      await m.reserve([res('r1', 'c2', 0.0005005)]);
      expect(await m.settle('r1', NaN, 'markup')).toBe('settled');
      expect(await m.settle('r1', ulp(0.5005, 1n) / 1000, 'billing')).toBe('confirmed');
      expect(await m.state('c2')).toMatchObject({ spentUsd: 0.0005, overspentUsd: 0 });
    });

    it('a priced win for a bid never reserved here is recorded for the campaign vouched for, once', async () => {
      const l = await make({ c1: { dailyUsd: 0.3 } });
      expect(await l.settle('u1', 0.1)).toBe('unknown');
      expect(await l.settle('u1', 0.1, 'markup', 'c1')).toBe('unknown');
      expect(await l.settle('u1', 0.1, 'win', 'c1')).toBe('settled');
      expect(await l.settle('u1', 0.1, 'win', 'c1')).toBe('duplicate');
      expect(await l.settle('u1', 0.05, 'billing', 'c1')).toBe('corrected');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.05, overspentUsd: 0 });
      // Past the budget: billed all the same, as overspend.
      expect(await l.settle('u2', 0.3, 'billing', 'c1')).toBe('overspend');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.05, overspentUsd: 0.3 });
    });

    it("remembers a settled bid until its notices' signed expiry has passed, whatever TTL the settling ledger runs with: a notice within it is a duplicate, never a second charge", async () => {
      // The notices were signed for a minute; the ledger settling them runs with a TTL of 200 ms
      // (lowered since the bids, or another process's), so it keeps finished bids 400 ms by its own
      // retention. Within their signed expiry, a notice for a bid it no longer knows is recorded as
      // one never reserved here: a second charge, had it forgotten one it settled.
      const SHORT = 200;
      const signed = now + 60_000;
      const store = storage();
      const budgets = { c1: { dailyUsd: 1 } };
      const ids = ['u1', 'h1'];
      if (opts.durable) {
        // Reserved for the minute by a ledger with the long TTL; settled after a restart with the short
        // one, by a caller that does not pass the signed expiry (the reservation carries it).
        const long = await store({ clock, budgets, reservationTtlMs: 60_000 });
        open.push(long);
        expect(await long.reserve([res('r1', 'c1', 0.1, 60_000)])).toEqual([true]);
        await long.close();
        ids.push('r1');
      }
      const l = await store({ clock, budgets, reservationTtlMs: SHORT });
      open.push(l);
      if (opts.durable) expect(await l.settle('r1', 0.1)).toBe('settled');
      // Never reserved here, recorded for the signed campaign.
      expect(await l.settle('u1', 0.1, 'win', 'c1', undefined, signed)).toBe('settled');
      // Reserved for less than its notices are heard (an exchange's `reservationHoldMs`).
      expect(await l.reserve([res('h1', 'c1', 0.1, 100)])).toEqual([true]);
      expect(await l.settle('h1', 0.1, 'win', 'c1', undefined, signed)).toBe('settled');
      // Past the short retention by the ledger's clock, and by Redis's (its keys expire in real time).
      now += 1000;
      await new Promise((r) => setTimeout(r, 3 * SHORT));
      // At the win's price: confirmed, moving nothing.
      for (const id of ids) expect(await l.settle(id, 0.1, 'billing', 'c1', undefined, signed), id).toBe('confirmed');
      const spent = ids.length === 3 ? 0.3 : 0.2;
      expect(await l.state('c1')).toMatchObject({ spentUsd: spent, overspentUsd: 0 });
      if (opts.forgetsAfterMs !== undefined) {
        // Past the signed expiry plus the retention it is forgotten: memory stays bounded, and a
        // notice then (late: the caller vouches for no campaign) moves nothing.
        now = signed + 2 * SHORT + 1;
        for (const id of ids) expect(await l.settle(id, 0.1, 'billing'), id).toBe('unknown');
        expect((await l.state('c1')).spentUsd).toBe(spent);
      }
    });

    it('a bid settled at 0 is raised by its billing like any other (Redis wrote -0, which HINCRBY refuses)', async () => {
      const l = await make({ c1: { dailyUsd: 0.008 } });
      await l.reserve([res('z1', 'c1', 0.004)]);
      expect(await l.settle('z1', 0)).toBe('settled');
      await l.reserve([res('z2', 'c1', 0.006)]);
      expect(await l.settle('z2', 0.006)).toBe('settled');
      expect(await l.settle('z1', 0.004, 'billing')).toBe('corrected');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.006, overspentUsd: 0.004 });
    });

    it('release answers true only for the call that released a held reservation', async () => {
      const l = await make({ c1: { dailyUsd: 1 } });
      await l.reserve([res('x1', 'c1', 0.1), res('x2', 'c1', 0.1)]);
      expect(await l.release('x1')).toBe(true);
      expect(await l.release('x1')).toBe(false);
      expect(await l.settle('x2', 0.05)).toBe('settled');
      expect(await l.release('x2')).toBe(false);
      expect(await l.release('nope')).toBe(false);
      // A loss notice ahead of its bid's reservation hides nothing from the release that follows.
      expect(await l.release('x3')).toBe(false);
      await l.reserve([res('x3', 'c1', 0.1)]);
      expect(await l.release('x3')).toBe(true);
      expect(await l.state('c1')).toMatchObject({ reservedUsd: 0 });
    });

    it('settlements and releases of one bid in flight together apply in call order', async () => {
      const l = await make({ c1: { dailyUsd: 10 } });
      await l.reserve([res('o1', 'c1', 1)]);
      expect(await Promise.all([l.settle('o1', 2), l.settle('o1', 0, 'markup'), l.release('o1')])).toEqual(['over-reservation', 'settled', false]);
      expect(await l.state('c1')).toMatchObject({ spentUsd: 1, reservedUsd: 0 });
    });

    it('a lowered budget reports what is already committed above it', async () => {
      const l = await make({ c1: { dailyUsd: 1 }, c2: { dailyUsd: 1 } });
      await l.reserve([res('b1', 'c1', 0.25), res('b2', 'c1', 0.25), res('b3', 'c1', 0.25), res('b4', 'c1', 0.25)]);
      expect(await l.configure({ c1: { dailyUsd: 1 } })).toEqual([]);
      expect(await l.configure({ c1: { dailyUsd: 0.02 }, c2: { dailyUsd: 0.5 } })).toEqual([
        { campaignId: 'c1', committedUsd: 1, budgetUsd: 0.02, reservedUsd: 1 },
      ]);
      expect(await l.reserve([res('b5', 'c1', 0.01)])).toEqual([false]);
      // The bids already out still settle (the exchange bills them), past the new budget as overspend.
      for (const b of ['b1', 'b2', 'b3', 'b4']) expect(await l.settle(b, 0.25)).toBe('overspend');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0, overspentUsd: 1, reservedUsd: 0 });
    });

    it('wins of bids held when a reload lowered the budget are spend up to it, overspend past it', async () => {
      // The reviewers' repro: 6 bids of 129 micros out, 2 won, the budget cut to 500 micros.
      const l = await make({ c1: { dailyUsd: 0.01 } });
      const bids = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'];
      expect(await l.reserve(bids.map((b) => res(b, 'c1', 0.000129)))).toEqual(bids.map(() => true));
      expect(await l.settle('h1', 0.000129)).toBe('settled');
      expect(await l.settle('h2', 0.000129)).toBe('settled');
      expect(await l.configure({ c1: { dailyUsd: 0.0005 } })).toHaveLength(1);
      // 258 spent: the third still fits (387), the others do not, each recorded whole as overspend.
      expect(await l.settle('h3', 0.000129)).toBe('settled');
      for (const b of ['h4', 'h5', 'h6']) expect(await l.settle(b, 0.000129)).toBe('overspend');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.000387, overspentUsd: 0.000387, reservedUsd: 0, budgetUsd: 0.0005 });
      // The flight's budget too: lowered under a held bid, its win is overspend.
      const f = await make({ c2: { dailyUsd: 1, lifetimeUsd: 1 } });
      await f.reserve([res('f1', 'c2', 0.5), res('f2', 'c2', 0.5)]);
      expect(await f.settle('f1', 0.4)).toBe('settled');
      await f.configure({ c2: { dailyUsd: 1, lifetimeUsd: 0.5 } });
      expect(await f.settle('f2', 0.2)).toBe('overspend');
      expect(await f.state('c2')).toMatchObject({ spentUsd: 0.4, overspentUsd: 0.2 });
    });

    it("a day past is judged by the daily budget it had, not by one a reload set after it", async () => {
      // T0 is noon: the day ends 12 h later.
      const mid = T0 + DAY / 2;
      const all = (c1: number, c2: number, c3: number) => ({ c1: { dailyUsd: c1 }, c2: { dailyUsd: c2 }, c3: { dailyUsd: c3 } });
      now = mid - 15_000;
      const l = await make(all(1, 1, 1));
      // c1: b1 holds 0.6 and ends unheard; b2 takes the room and wins 0.6. c2: 0.9 spent, h holds 0.05.
      expect(await l.reserve([res('b1', 'c1', 0.6), res('a', 'c2', 0.9), res('x', 'c3', 0.5)])).toEqual([true, true, true]);
      expect(await l.settle('a', 0.9)).toBe('settled');
      expect(await l.settle('x', 0.5)).toBe('settled');
      // c3's budget raised during the day: the day's, once past too.
      now = mid - 10_000;
      await l.configure(all(1, 1, 2));
      now = mid - 4_000;
      expect(await l.reserve([res('b2', 'c1', 0.6), res('h', 'c2', 0.05), res('y', 'c3', 1)])).toEqual([true, true, true]);
      expect(await l.settle('b2', 0.6)).toBe('settled');
      // Just past midnight, the next day's budgets: c1 raised to 10, c2 lowered to 0.5, c3 back to 1.
      now = mid + 1_000;
      await l.configure(all(10, 0.5, 1));
      now = mid + 2_000;
      // Billed by the exchange: on its day, where 0.4 of 1 USD was left, past the budget (was: spend, 1.2 spent of 1).
      expect(await l.settle('b1', 0.6)).toBe('overspend');
      // Held within its day's budget (0.95 of 1): spend (was: overspend against the next day's 0.5).
      expect(await l.settle('h', 0.05)).toBe('settled');
      expect(await l.settle('y', 1)).toBe('settled');
      expect(await l.state('c1')).toMatchObject({ spentBeforeUsd: 0.6, overspentBeforeUsd: 0.6, budgetUsd: 10 });
      expect(await l.state('c2')).toMatchObject({ spentBeforeUsd: 0.95, overspentBeforeUsd: 0, budgetUsd: 0.5 });
      expect(await l.state('c3')).toMatchObject({ spentBeforeUsd: 1.5, overspentBeforeUsd: 0 });
      // Today is judged by the budget in force.
      expect(await l.reserve([res('t1', 'c1', 5), res('t2', 'c2', 0.6), res('t3', 'c2', 0.5)])).toEqual([true, false, true]);
    });

    it('a held bid within its budget settles as spend, also after a late win was recorded as overspend', async () => {
      const l = await make({ c1: { dailyUsd: 1 } });
      await l.reserve([res('w1', 'c1', 0.6), res('late', 'c1', 0.4, TTL / 2)]);
      now += TTL / 2;
      // late's reservation ended and w2 took most of the room it left: late's win is past the budget.
      expect(await l.reserve([res('w2', 'c1', 0.3)])).toEqual([true]);
      expect(await l.settle('late', 0.4)).toBe('overspend');
      // w1 and w2 were reserved within the budget before the late win came: still spend.
      expect(await l.settle('w1', 0.6)).toBe('settled');
      expect(await l.settle('w2', 0.3)).toBe('settled');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.9, overspentUsd: 0.4, reservedUsd: 0 });
    });

    it('once: click and conversion dedup answers true the first time only, until its expiry', async () => {
      const l = await make({ c1: { dailyUsd: 1 } });
      expect(await l.once('c:b1', now + 1000)).toBe(true);
      expect(await l.once('c:b1', now + 1000)).toBe(false);
      expect(await l.once('v:b1', now + 1000)).toBe(true);
      expect(await l.once('c:past', now)).toBe(false);
      now += 1001;
      expect(await l.once('c:b1', now + 1000)).toBe(true);
    });

    it('bidOutcome: held, settled, released, expired, unknown; a win after the loss settles it', async () => {
      const l = await make({ c1: { dailyUsd: 1 } });
      await l.reserve([res('b1', 'c1', 0.1), res('b2', 'c1', 0.1), res('b3', 'c1', 0.1), res('b4', 'c1', 0.1), res('b5', 'c1', 0.1, 1000)]);
      await l.settle('b1', 0.05);
      await l.release('b2');
      await l.release('b4');
      await l.settle('b4', 0.05);
      expect(await Promise.all(['b1', 'b2', 'b3', 'b4', 'nope'].map((b) => l.bidOutcome(b)))).toEqual(['settled', 'released', 'held', 'settled', 'unknown']);
      now += 1001;
      // Expiry is applied when the ledger next looks at the campaign.
      await l.reserve([res('b6', 'c1', 0.1)]);
      expect(await l.bidOutcome('b5')).toBe('expired');
    });

    it('caps the reservation life at reservationTtlMs', async () => {
      const l = await make({ c1: { dailyUsd: 1 } });
      await l.reserve([res('b1', 'c1', 1, 100 * TTL)]);
      now += TTL;
      expect(await l.reserve([res('b2', 'c1', 1)])).toEqual([true]);
    });

    it('resets the daily budget at UTC midnight and charges a win to the day it was reserved', async () => {
      const l = await make({ c1: { dailyUsd: 1 } });
      now = Date.UTC(2026, 0, 10, 23, 59, 59, 995);
      await l.reserve([res('b1', 'c1', 1)]);
      now += 10;
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0, reservedUsd: 0, budgetUsd: 1 });
      expect(await l.reserve([res('b2', 'c1', 1)])).toEqual([true]);
      expect(await l.settle('b1', 0.8)).toBe('settled');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0, reservedUsd: 1, budgetUsd: 1 });
    });

    it('honours the lifetime budget and the flight dates', async () => {
      const l = await make({ c1: { dailyUsd: 1, lifetimeUsd: 1.5, start: '2026-01-10', end: '2026-01-11' } });
      await l.reserve([res('b1', 'c1', 1)]);
      await l.settle('b1', 1);
      now += DAY;
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0, reservedUsd: 0, budgetUsd: 0.5 });
      expect(await l.reserve([res('b2', 'c1', 0.6)])).toEqual([false]);
      expect(await l.reserve([res('b3', 'c1', 0.5)])).toEqual([true]);
      await l.release('b3');
      now += DAY;
      expect((await l.state('c1')).budgetUsd).toBe(0);
      expect(await l.reserve([res('b4', 'c1', 0.1)])).toEqual([false]);
      now -= 3 * DAY;
      expect(await l.reserve([res('b5', 'c1', 0.1)])).toEqual([false]);
    });

    it('reports the spend and overspend of the days before today, whatever the budget of today', async () => {
      const l = await make({ c1: { dailyUsd: 1, lifetimeUsd: 10, start: '2026-01-10', end: '2026-01-20' }, c2: { dailyUsd: 1 } });
      expect(await l.state('c1')).toMatchObject({ spentBeforeUsd: 0, overspentBeforeUsd: 0 });
      await l.reserve([res('b1', 'c1', 1), res('b2', 'c2', 1)]);
      await l.settle('b1', 0.7);
      await l.settle('b2', 0.4);
      // A win past the budget (its reservation expired, the day's room taken): overspend.
      await l.reserve([res('b3', 'c1', 0.3, 1000)]);
      now += 1001;
      expect(await l.reserve([res('b4', 'c1', 0.3)])).toEqual([true]);
      await l.settle('b4', 0.3);
      expect(await l.settle('b3', 0.25)).toBe('overspend');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 1, overspentUsd: 0.25, spentBeforeUsd: 0, overspentBeforeUsd: 0 });
      now += DAY;
      await l.reserve([res('b5', 'c1', 0.2)]);
      await l.settle('b5', 0.2);
      const s = await l.state('c1');
      expect(s).toMatchObject({ spentUsd: 0.2, overspentUsd: 0, spentBeforeUsd: 1, overspentBeforeUsd: 0.25 });
      // A campaign without a lifetime budget, whose budget of today says nothing of the days before.
      expect(await l.state('c2')).toMatchObject({ spentUsd: 0, budgetUsd: 1, spentBeforeUsd: 0.4, overspentBeforeUsd: 0 });
      // A daily budget lowered by a reload (another process's older rule) changes none of it.
      await l.configure({ c1: { dailyUsd: 0.5, lifetimeUsd: 10, start: '2026-01-10', end: '2026-01-20' } });
      expect(await l.state('c1')).toMatchObject({ budgetUsd: 0.5, spentBeforeUsd: 1, overspentBeforeUsd: 0.25 });
    });

    it('states: every campaign as state answers it, in the order asked, over more campaigns than one Redis call reads', async () => {
      // 450 campaigns: three calls of the Redis ledger's. By i % 4: spend the day before; a hold;
      // spend today (and overspend, one in ten); nothing.
      const ids = Array.from({ length: 450 }, (_, i) => `k${i}`);
      // Opened the day before: a ledger's budget day never goes back (a clock stepped back spends on the latest day seen).
      now = T0 - DAY;
      const l = await make(Object.fromEntries(ids.map((id) => [id, { dailyUsd: 1 }])));
      const before = ids.filter((_, i) => i % 4 === 0);
      await l.reserve(before.map((id) => res(`${id}:y`, id, 0.5)));
      for (const id of before) expect(await l.settle(`${id}:y`, 0.3)).toBe('settled');
      now = T0;
      await l.reserve(ids.filter((_, i) => i % 4 === 1).map((id) => res(`${id}:h`, id, 0.4)));
      const today = ids.filter((_, i) => i % 4 === 2);
      await l.reserve(today.map((id) => res(`${id}:s`, id, 0.6)));
      for (const id of today) expect(await l.settle(`${id}:s`, 0.6)).toBe('settled');
      const over = today.filter((_, j) => j % 10 === 0);
      for (const id of over) expect(await l.settle(`${id}:u`, 0.5, 'win', id)).toBe('overspend');
      const zero = { spentUsd: 0, reservedUsd: 0, budgetUsd: 1, overspentUsd: 0, spentBeforeUsd: 0, overspentBeforeUsd: 0 };
      const expected = (id: string) => {
        if (id === 'nope') return { ...zero, budgetUsd: 0 };
        const i = Number(id.slice(1));
        return [{ ...zero, spentBeforeUsd: 0.3 }, { ...zero, reservedUsd: 0.4 }, { ...zero, spentUsd: 0.6, overspentUsd: over.includes(id) ? 0.5 : 0 }, zero][i % 4];
      };
      const asked = [...ids].reverse().concat('nope', 'k2');
      expect(await l.states(asked)).toEqual(asked.map(expected));
      expect(await l.state('k2')).toEqual(expected('k2'));
      expect(await l.state('k6')).toEqual(expected('k6'));
      expect(await l.states([])).toEqual([]);
    });

    it('reconfigures budgets keeping spend, and rejects an invalid budget whole', async () => {
      const l = await make({ c1: { dailyUsd: 1 } });
      await l.reserve([res('b1', 'c1', 1)]);
      await l.settle('b1', 1);
      await l.configure({ c1: { dailyUsd: 3 }, c2: { dailyUsd: 1 } });
      expect(await l.state('c1')).toMatchObject({ spentUsd: 1, reservedUsd: 0, budgetUsd: 3 });
      expect(await l.reserve([res('b2', 'c1', 2), res('b3', 'c2', 1)])).toEqual([true, true]);
      await expect(l.configure({ c1: { dailyUsd: 0.5 }, c2: { dailyUsd: -1 } })).rejects.toThrow(/c2/);
      expect((await l.state('c1')).budgetUsd).toBe(3);
      await l.configure({ c1: { dailyUsd: 0.5 } });
      expect(await l.reserve([res('b4', 'c1', 0.01)])).toEqual([false]);
    });

    it(`keeps spend within budget and equal to the unique valid wins, whatever the notices do${
      opts.durable ? ', across restarts' : ''
    }`, async () => {
      const campaigns = ['c1', 'c2'];
      const op = fc.oneof(
        fc.record({
          k: fc.constant('reserve' as const),
          n: fc.integer({ min: 1, max: 4 }),
          c: fc.constantFrom(...campaigns),
          cents: fc.integer({ min: 1, max: 40 }),
        }),
        fc.record({ k: fc.constant('settle' as const), bid: fc.nat(30), frac: fc.double({ min: 0, max: 1.2, noNaN: true }) }),
        fc.record({ k: fc.constant('release' as const), bid: fc.nat(30) }),
        fc.record({ k: fc.constant('forged' as const), bid: fc.nat(30) }),
        fc.record({ k: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 2 * TTL }) }),
        ...(opts.durable ? [fc.record({ k: fc.constant('restart' as const) })] : []),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
          now = T0;
          const budgets = { c1: { dailyUsd: 1 }, c2: { dailyUsd: 0.5, lifetimeUsd: 0.8 } };
          const open = storage();
          let l = await open({ clock, budgets, reservationTtlMs: TTL });
          try {
            // What the test knows: reserved amounts, and which bids were settled at what price.
            const reserved = new Map<
              string,
              { c: string; micros: number; exp: number; open: boolean; settled?: boolean; refused?: boolean; finished?: number }
            >();
            const settledMicros = new Map<string, number>(campaigns.map((c) => [c, 0]));
            const overMicros = new Map<string, number>(campaigns.map((c) => [c, 0]));
            let next = 0;
            for (const o of ops) {
              if (o.k === 'reserve') {
                const items: Reservation[] = [];
                for (let i = 0; i < o.n; i++) items.push(res(`b${next++}`, o.c, o.cents / 100));
                const ok = await l.reserve(items);
                items.forEach((it, i) => {
                  if (ok[i]) reserved.set(it.bidId, { c: o.c, micros: o.cents * 10_000, exp: it.expiresAtMs, open: true });
                });
              } else if (o.k === 'settle') {
                const r = reserved.get(`b${o.bid}`);
                const micros = Math.round((r?.micros ?? 10_000) * o.frac);
                const outcome = await l.settle(`b${o.bid}`, micros / 1e6);
                const finished = r === undefined ? undefined : Math.min(r.finished ?? r.exp, r.exp);
                if (r === undefined) expect(outcome).toBe('unknown');
                else if (outcome === 'unknown' && opts.forgetsAfterMs !== undefined && now >= finished! + opts.forgetsAfterMs) {
                  // Forgotten: nothing moves, which the spend check below confirms.
                }
                else if (r.settled || r.refused) expect(outcome).toBe('duplicate');
                else if (micros > r.micros) expect(outcome).toBe('over-reservation');
                else if (r.open && now < r.exp) expect(outcome).toBe('settled');
                else expect(['settled', 'overspend']).toContain(outcome);
                if (r !== undefined && outcome === 'settled') {
                  settledMicros.set(r.c, settledMicros.get(r.c)! + micros);
                  r.settled = true;
                  r.finished ??= now;
                } else if (r !== undefined && outcome === 'overspend') {
                  overMicros.set(r.c, overMicros.get(r.c)! + micros);
                  r.settled = true;
                  r.finished ??= now;
                }
              } else if (o.k === 'release') {
                await l.release(`b${o.bid}`);
                const r = reserved.get(`b${o.bid}`);
                if (r) {
                  r.open = false;
                  r.finished ??= now;
                }
              } else if (o.k === 'restart') {
                await l.close();
                l = await open({ clock, budgets, reservationTtlMs: TTL });
              } else if (o.k === 'forged') {
                expect(await l.settle(`forged${o.bid}`, 0.01)).toBe('unknown');
              } else {
                now += o.ms;
              }
              // The whole run stays within one UTC day, so the day's spend is all the spend.
              const states = await l.states(campaigns);
              for (const [i, c] of campaigns.entries()) {
                const s = await l.state(c);
                expect(states[i]).toEqual(s);
                expect(Math.round(s.spentUsd * 1e6)).toBe(settledMicros.get(c));
                expect(Math.round(s.overspentUsd * 1e6)).toBe(overMicros.get(c));
                expect(s.spentUsd + s.reservedUsd).toBeLessThanOrEqual(s.budgetUsd + 1e-9);
              }
            }
            expect(settledMicros.get('c2')!).toBeLessThanOrEqual(500_000);
          } finally {
            await l.close();
          }
        }),
        { numRuns: opts.propertyRuns, seed: 20260110 },
      );
    });
  });
}
