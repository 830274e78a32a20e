import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryLedger, createRedisLedger } from '../src/ledger/index.js';
import { encodeRecord } from '../src/ledger/journal.js';
import type { BudgetLedger, SettleSource } from '../src/types.js';
import { connectRedis, dropKeysAndQuit } from './helpers/redis.js';

/**
 * A bid's notices are heard until their signed expiry; within it, one for a bid the ledger does not
 * know is recorded as never reserved here (src/notices). So every ledger must remember a bid it
 * settled until then, whatever TTL it runs with now. Differential: the in-process ledger with its
 * journal, restarted (at random with a TTL five times shorter, as a lowered `noticeTtlMs`) and
 * compacted, against a reference that never forgets, and against Redis where one answers. Notices
 * come as the handler sends them: the signed campaign only within the signed expiry.
 */
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 10, 23, 59, 30); // near midnight: ops cross the UTC day
const TTL = 10_000;
const quiet = { warn: () => {} };
const budgets = { c1: { dailyUsd: 1 }, c2: { dailyUsd: 0.5, lifetimeUsd: 0.8 } };
const camps = ['c1', 'c2'];
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-expiry-'));
const redis = await connectRedis();
const prefix = `test:expiry:${process.pid}:${Date.now().toString(36)}:`;
afterAll(async () => {
  fs.rmSync(root, { recursive: true, force: true });
  if (redis) await dropKeysAndQuit(redis, prefix);
});

describe('a settled bid is remembered until its notices expire', () => {
  it('journal, restarts with a shorter TTL and compaction agree with a ledger that never forgets (and with Redis): no notice within its expiry settles a bid twice', async () => {
    let run = 0;
    const op = fc.oneof(
      fc.record({ k: fc.constant('reserve' as const), n: fc.integer({ min: 1, max: 3 }), c: fc.constantFrom(...camps), cents: fc.integer({ min: 1, max: 40 }) }),
      fc.record({ k: fc.constant('settle' as const), bid: fc.nat(8), frac: fc.double({ min: 0, max: 1.1, noNaN: true }), src: fc.constantFrom<SettleSource>('markup', 'win', 'billing') }),
      fc.record({ k: fc.constant('release' as const), bid: fc.nat(8) }),
      fc.record({ k: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: TTL / 2 }) }),
      fc.record({ k: fc.constant('restart' as const), short: fc.boolean() }),
      fc.record({ k: fc.constant('compact' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40, size: 'max' }), async (ops) => {
        let now = T0;
        const clock = () => now;
        const dir = path.join(root, `r${run}`);
        let ttl = TTL;
        const openJournal = () => createMemoryLedger({ clock, budgets, reservationTtlMs: ttl, journalDir: dir, logger: quiet, compactor: 'inline' });
        let mem = await openJournal();
        const ref = await createMemoryLedger({ clock, budgets, reservationTtlMs: TTL, retentionMs: 1e12, logger: quiet });
        const red: BudgetLedger | null = redis ? await createRedisLedger({ client: redis, clock, budgets, reservationTtlMs: TTL, keyPrefix: `${prefix}${run}:`, logger: quiet, retentionMs: 1e9 }) : null;
        run++;
        // Per bid: its reserved amount and its notices' signed expiry (a bid never reserved was
        // signed by another process at T0).
        const bids = new Map<string, { usd: number; x: number; c: string }>();
        let next = 0;
        const log: string[] = [];
        try {
          for (const o of ops) {
            log.push(JSON.stringify(o));
            const why = () => log.join('\n');
            if (o.k === 'reserve') {
              const items = [];
              // Held and signed for the TTL in force.
              for (let i = 0; i < o.n; i++) items.push({ bidId: `b${next++}`, campaignId: o.c, amountUsd: o.cents / 100, expiresAtMs: now + ttl });
              const a = await mem.reserve(items);
              expect(await ref.reserve(items), why()).toEqual(a);
              if (red) expect(await red.reserve(items), why()).toEqual(a);
              for (const it of items) bids.set(it.bidId, { usd: it.amountUsd, x: now + ttl, c: it.campaignId });
            } else if (o.k === 'settle') {
              // A bid not reserved (yet) is one another process issued: an id this one never reserves.
              const b = bids.has(`b${o.bid}`) ? `b${o.bid}` : `u${o.bid}`;
              const { usd: reserved, x, c } = bids.get(b) ?? { usd: 0.1, x: T0 + TTL, c: 'c1' };
              const usd = Math.round(reserved * o.frac * 1e6) / 1e6;
              const late = now > x;
              // Past its expiry a render is refused before the ledger (410); a priced notice comes
              // without the campaign.
              if (late && o.src === 'markup') continue;
              const vouch = late ? undefined : c;
              const a = await mem.settle(b, usd, o.src, vouch, undefined, x);
              // Forgotten, which only a late notice may find: it moves nothing (the others, which
              // never forget, are not asked).
              if (a === 'unknown' && late) continue;
              expect(a, why()).toBe(await ref.settle(b, usd, o.src, vouch, undefined, x));
              if (red) expect(await red.settle(b, usd, o.src, vouch, undefined, x), why()).toBe(a);
            } else if (o.k === 'release') {
              const a = await mem.release(`b${o.bid}`);
              expect(await ref.release(`b${o.bid}`), why()).toBe(a);
              if (red) expect(await red.release(`b${o.bid}`), why()).toBe(a);
            } else if (o.k === 'wait') now += o.ms;
            else {
              const before = await mem.states(camps);
              if (o.k === 'compact') await mem.compact();
              await mem.close();
              if (o.k === 'restart') ttl = o.short ? TTL / 5 : TTL;
              mem = await openJournal();
              expect(await mem.states(camps), `${o.k}\n${why()}`).toEqual(before);
            }
            const want = await ref.states(camps);
            expect(await mem.states(camps), why()).toEqual(want);
            if (red) {
              const r = await red.states(camps);
              const micros = (s: (typeof r)[number]) => ({ s: Math.round(s.spentUsd * 1e6), o: Math.round(s.overspentUsd * 1e6), res: Math.round(s.reservedUsd * 1e6) });
              expect(r.map(micros), `redis\n${why()}`).toEqual(want.map(micros));
            }
          }
        } finally {
          await mem.close();
          await ref.close();
          await red?.close();
        }
      }),
      {
        numRuns: 40,
        seed: 20260110,
      },
    );
  }, 300_000);

  it('journals and snapshots written before the signed expiry was kept replay to the same money, each bid kept from the later of its finish and its reservation\'s expiry', async () => {
    const dir = path.join(root, 'old');
    fs.mkdirSync(dir);
    const d = Math.floor(T0 / DAY);
    const at = T0 + 1000;
    const lines = (recs: object[]) => recs.map((r) => encodeRecord(r as never)).join('');
    // A snapshot's finished bid (no `e`), then a journal: a bid reserved for a minute and settled
    // at once, and a bid never reserved here, settled (no `x`).
    fs.writeFileSync(path.join(dir, 'snapshot'), lines([{ t: 'h', g: 1 }, { t: 'a', c: 'c1', d, s: 200_000 }, { t: 'k', b: 'old-k', c: 'c1', d, a: 100_000, st: 1, at }, { t: 'z', n: 4 }]));
    fs.writeFileSync(
      path.join(dir, 'journal.2'),
      lines([
        { t: 'r', b: 'old-r', c: 'c1', a: 100_000, e: T0 + 60_000, d },
        { t: 's', b: 'old-r', c: 'c1', d, p: 100_000, at },
        { t: 's', b: 'old-u', c: 'c1', d, p: 100_000, at },
      ]),
    );
    let now = at + 2 * TTL - 1;
    const open = () => createMemoryLedger({ clock: () => now, budgets, reservationTtlMs: TTL, journalDir: dir, logger: quiet, compactor: 'inline' });
    const l = await open();
    for (const b of ['old-k', 'old-r', 'old-u']) expect(await l.bidOutcome(b), b).toBe('settled');
    await l.close();
    now = at + 2 * TTL;
    const again = await open();
    expect((await again.state('c1')).spentUsd).toBeCloseTo(0.4, 9);
    expect(await again.bidOutcome('old-k')).toBe('unknown');
    expect(await again.bidOutcome('old-u')).toBe('unknown');
    // Its reservation's expiry, read from the old journal, keeps it: a notice within it finds it.
    expect(await again.bidOutcome('old-r')).toBe('settled');
    expect(await again.settle('old-r', 0.1, 'billing', 'c1')).toBe('confirmed');
    // And so does the snapshot compaction writes (`k` with `e`), until that expiry plus the retention.
    await again.compact();
    await again.close();
    expect(fs.readFileSync(path.join(dir, 'snapshot'), 'utf8')).toMatch(new RegExp(`"t":"k","b":"old-r"[^\\n]*"e":${T0 + 60_000}`));
    now = T0 + 60_000 + 2 * TTL - 1;
    const third = await open();
    expect(await third.bidOutcome('old-r')).toBe('settled');
    now += 1;
    const s = await third.state('c1');
    expect(await third.bidOutcome('old-r')).toBe('unknown');
    // Past midnight by now: the spend is the day before's.
    expect(s.spentUsd + s.spentBeforeUsd).toBeCloseTo(0.4, 9);
    await third.close();
  });
});
