import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryLedger, type LedgerLogger } from '../src/ledger/index.js';
import { compileBudgets, headroomMicros, utcDay } from '../src/ledger/budget.js';
import { decodeRecords } from '../src/ledger/journal.js';
import { KEEP_DAYS, LedgerCore, type Account } from '../src/ledger/state.js';
import type { Budget, SettleSource } from '../src/types.js';

/**
 * The in-process ledger's day records are folded into the campaign totals once no notice can
 * touch the day: before, it kept one per campaign a day for ever, in memory and in the snapshot
 * replayed at every start. Folded, every answer stays the one an unpruned ledger gives.
 */
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 5, 12);
const TTL = 60_000;
const DAYS = 30;
const budgets: Record<string, Budget> = {
  c0: { dailyUsd: 10 },
  c1: { dailyUsd: 10, lifetimeUsd: 200 },
  // Runs out of its flight's money about day 18: reservations refused, late wins then overspend.
  c2: { dailyUsd: 10, lifetimeUsd: 55, start: '2026-01-01', end: '2026-02-28' },
};
const ids = Object.keys(budgets);
const silent: LedgerLogger = { warn: () => {} };
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-days-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** The ledger operations one simulated day makes, as (now, op) steps: a win corrected by its billing, a late win. */
type Op =
  | { at: number; op: 'reserve'; bid: string; c: string; usd: number }
  | { at: number; op: 'settle'; bid: string; usd: number; source: SettleSource };
function dayOps(k: number): Op[] {
  const start = T0 + k * DAY;
  const ops: Op[] = [];
  ids.forEach((c, i) => {
    const p = 1 + ((k * 7 + i * 3) % 10) / 10;
    ops.push({ at: start, op: 'reserve', bid: `w${k}-${c}`, c, usd: 3 });
    ops.push({ at: start + 1000, op: 'settle', bid: `w${k}-${c}`, usd: p, source: 'win' });
    ops.push({ at: start + 2000, op: 'settle', bid: `w${k}-${c}`, usd: p + 0.25, source: 'billing' });
    ops.push({ at: start + 3000, op: 'reserve', bid: `l${k}-${c}`, c, usd: 2 });
    // Takes the room the expired one held, so a late win can find none.
    ops.push({ at: start + 4000 + TTL, op: 'reserve', bid: `m${k}-${c}`, c, usd: 3 });
    ops.push({ at: start + 5000 + TTL, op: 'settle', bid: `m${k}-${c}`, usd: 2.5 + i / 4, source: 'win' });
    // Past its reservation, within the retention: a late win, judged against the day's room.
    ops.push({ at: start + 3000 + 2 * TTL, op: 'settle', bid: `l${k}-${c}`, usd: 1.5, source: 'win' });
  });
  return ops.sort((a, b) => a.at - b.at);
}

function newCore(fold: boolean): LedgerCore {
  const core = new LedgerCore(2 * TTL);
  for (const [id, rule] of compileBudgets(budgets)) core.account(id).rule = rule;
  // The reference: the same state machine with folding switched off, as every ledger was before.
  if (!fold) (core as unknown as { foldDays(): void }).foldDays = () => {};
  return core;
}

function runCore(core: LedgerCore, ops: Op[]): string[] {
  return ops.map((o) => {
    core.expire(o.at);
    if (o.op === 'reserve') return String(core.reserve({ bidId: o.bid, campaignId: o.c, amountUsd: o.usd, expiresAtMs: o.at + TTL }, o.at, TTL) !== null);
    return core.settle(o.bid, o.usd, o.at, o.source).outcome;
  });
}

/** What a budget decision reads of an account on `today`: lifetime/flight totals, today's record and its room. */
function view(acc: Account, today: number) {
  const d = acc.days.get(today) ?? { spent: 0, reserved: 0, over: 0 };
  return { spent: acc.spent, over: acc.over, reserved: acc.reserved, today: { ...d }, room: headroomMicros(acc.rule!, today, d.spent + d.over, d.reserved, acc.spent + acc.over, acc.reserved) };
}

describe('ledger day records', () => {
  it('keeps at most KEEP_DAYS + 1 day records a campaign over 30 days of wins, every answer as unpruned, and a snapshot restores it', () => {
    const pruned = newCore(true);
    const full = newCore(false);
    let maxDays = 0;
    for (let k = 0; k < DAYS; k++) {
      const ops = dayOps(k);
      expect(runCore(pruned, ops)).toEqual(runCore(full, ops));
      const today = utcDay(T0 + k * DAY);
      for (const c of ids) {
        expect(view(pruned.account(c), today)).toEqual(view(full.account(c), today));
        expect(pruned.overCommitted(today)).toEqual(full.overCommitted(today));
        maxDays = Math.max(maxDays, pruned.account(c).days.size);
      }
    }
    expect(maxDays).toBeLessThanOrEqual(KEEP_DAYS + 1);
    expect(full.account('c0').days.size).toBe(DAYS);
    // c2's flight ran out: refused reservations and overspent late wins are in the run.
    expect(full.account('c2').over).toBeGreaterThan(0);

    const end = T0 + (DAYS - 1) * DAY + DAY / 2;
    pruned.expire(end);
    const restored = new LedgerCore(2 * TTL);
    for (const rec of pruned.snapshot()) restored.apply(rec);
    restored.expire(end);
    for (const c of ids) {
      const a = pruned.account(c);
      const b = restored.account(c);
      // A snapshot leaves out days with no spend (as before folding).
      const days = (x: Account) => [...x.days].filter(([, d]) => d.spent !== 0 || d.over !== 0 || d.reserved !== 0).sort();
      expect({ ...b, rule: a.rule, days: days(b) }).toEqual({ ...a, days: days(a) });
      expect(a.foldedSpent).toBeGreaterThan(0);
    }
  });

  it('keeps a past day while a remembered bid of it may still be corrected there', () => {
    // Notices heard for 20 days: a billing notice 15 days on still corrects a bid of day 0.
    const ttl = 20 * DAY;
    const core = new LedgerCore(ttl);
    core.account('c0').rule = compileBudgets({ c0: { dailyUsd: 10 } }).get('c0');
    core.expire(T0);
    core.reserve({ bidId: 'a', campaignId: 'c0', amountUsd: 5, expiresAtMs: T0 + 60_000 }, T0, ttl);
    core.reserve({ bidId: 'b', campaignId: 'c0', amountUsd: 5, expiresAtMs: T0 + 60_000 }, T0, ttl);
    expect(core.settle('a', 5, T0 + 1).outcome).toBe('settled');
    expect(core.settle('b', 5, T0 + 2).outcome).toBe('settled');
    for (let k = 1; k <= 15; k++) {
      const now = T0 + k * DAY;
      core.expire(now);
      core.reserve({ bidId: `d${k}`, campaignId: 'c0', amountUsd: 1, expiresAtMs: now + 60_000 }, now, ttl);
      core.settle(`d${k}`, 1, now + 1);
    }
    const day0 = utcDay(T0);
    expect(core.account('c0').days.has(day0)).toBe(true);
    // Day 0 has no room left: the rise makes the bid overspend, as it did on day 0.
    const res = core.settle('a', 6, T0 + 15 * DAY + 2, 'billing');
    expect(res.outcome).toBe('corrected');
    expect(res.record).toMatchObject({ o: 1 });
    const acc = core.account('c0');
    expect([acc.spent, acc.over]).toEqual([20_000_000, 6_000_000]);
    // Forgotten (its retention past), day 0 is folded; the totals stay.
    core.expire(T0 + 60 * DAY);
    expect(acc.days.size).toBe(0);
    expect([acc.spent, acc.over, acc.foldedSpent, acc.foldedOver]).toEqual([20_000_000, 6_000_000, 20_000_000, 6_000_000]);
  });

  it('a journalled ledger replays and compacts to the same state, its snapshot holding KEEP_DAYS + 2 day records a campaign at most', async () => {
    const dir = path.join(root, 'j');
    let now = T0;
    const open = () => createMemoryLedger({ clock: () => now, budgets, reservationTtlMs: TTL, journalDir: dir, compactor: 'inline', compactAfterBytes: Number.MAX_SAFE_INTEGER, logger: silent });
    const ref = newCore(false);
    let l = await open();
    for (let k = 0; k < DAYS; k++) {
      const ops = dayOps(k);
      const want = runCore(ref, ops);
      const got: string[] = [];
      for (const o of ops) {
        now = o.at;
        got.push(o.op === 'reserve' ? String((await l.reserve([{ bidId: o.bid, campaignId: o.c, amountUsd: o.usd, expiresAtMs: o.at + TTL }]))[0]) : await l.settle(o.bid, o.usd, o.source));
      }
      expect(got).toEqual(want);
      // Compacted now and then, as a busy journal is: each snapshot folds the days past.
      if (k % 10 === 9) await l.compact();
    }
    now = T0 + (DAYS - 1) * DAY + DAY / 2;
    const states = async () => Promise.all(ids.map((c) => l.state(c)));
    const before = await states();
    const today = utcDay(now);
    ref.expire(now);
    before.forEach((s, i) => {
      const v = view(ref.account(ids[i]), today);
      expect([s.spentUsd, s.overspentUsd, s.spentBeforeUsd + s.spentUsd, s.overspentBeforeUsd + s.overspentUsd]).toEqual([v.today.spent / 1e6, v.today.over / 1e6, v.spent / 1e6, v.over / 1e6]);
    });
    await l.close();

    l = await open();
    expect(await states()).toEqual(before);
    await l.compact();
    await l.close();
    const snap = decodeRecords(fs.readFileSync(path.join(dir, 'snapshot')), true).records;
    for (const c of ids) expect(snap.filter((r) => r.t === 'a' && r.c === c).length).toBeLessThanOrEqual(KEEP_DAYS + 2);

    l = await open();
    expect(await states()).toEqual(before);
    // Today's room, as unpruned: a reservation of exactly the room is granted, a micro-dollar more is not.
    for (const c of ids) {
      const room = view(ref.account(c), today).room;
      if (room < 2) continue;
      expect(await l.reserve([{ bidId: `x-${c}`, campaignId: c, amountUsd: (room + 1) / 1e6, expiresAtMs: now + TTL }])).toEqual([false]);
      expect(await l.reserve([{ bidId: `y-${c}`, campaignId: c, amountUsd: room / 1e6, expiresAtMs: now + TTL }])).toEqual([true]);
    }
    await l.close();
  });
});
