import { describe, expect, it } from 'vitest';
import { HOLD_CHUNK, HoldTable } from '../src/ledger/holds.js';

/** What one remembered bid holds, read back from the columns. */
function read(t: HoldTable, bidId: string) {
  const s = t.slot(bidId);
  return s < 0 ? undefined : { c: t.campaign(s), a: t.a(s), e: t.e(s), d: t.d(s), st: t.st(s), at: t.at(s), f: t.f(s) };
}

/** The row the tests store for bid number i. */
function row(i: number) {
  return { c: `camp-${i % 7}`, a: 1000 + i * 0.5, e: 1_796_000_000_000 + i, d: 20_790 + (i % 3), st: i % 5, at: i % 2 ? 1_796_000_000_500 + i : 0, f: i % 4 };
}

describe('hold table', () => {
  it('remembers each bid in its own slot, through growth, deletes and reused slots', () => {
    const t = new HoldTable();
    const want = new Map<string, ReturnType<typeof read>>();
    // Ids ending in every character class; enough of them to span several chunks.
    for (let i = 0; i < 5000; i++) {
      const id = `bid-${i.toString(36)}`;
      const r = row(i);
      t.add(id, r.c, r.a, r.e, r.d, r.st, r.at, r.f);
      want.set(id, r);
      if (i % 3 === 0) {
        const gone = `bid-${(i >> 1).toString(36)}`;
        t.delete(gone);
        want.delete(gone);
      }
    }
    expect(t.size).toBe(want.size);
    for (const [id, r] of want) expect(read(t, id)).toEqual(r);
    expect(read(t, 'bid-0')).toBeUndefined();
    expect(t.has('bid-0')).toBe(false);
    expect(new Map([...t.entries()].map(([id]) => [id, read(t, id)]))).toEqual(want);
  });

  it('gives a deleted bid slot to the next one, with the new values only', () => {
    const t = new HoldTable();
    t.add('a', 'c1', 5, 10, 1, 0, 0, 3);
    const s = t.slot('a');
    t.delete('a');
    t.delete('a');
    expect(t.add('b', 'c2', 7, 0, 2, 1, 9, 0)).toBe(s);
    expect(read(t, 'b')).toEqual({ c: 'c2', a: 7, e: 0, d: 2, st: 1, at: 9, f: 0 });
    expect(t.size).toBe(1);
    expect(t.add('', 'c1', 1, 1, 1, 0, 0, 0)).not.toBe(s);
    expect(read(t, '')).toEqual({ c: 'c1', a: 1, e: 1, d: 1, st: 0, at: 0, f: 0 });
  });

  it('keeps earlier chunks as they were while later ones are added, and writes reach the right slot', () => {
    const t = new HoldTable();
    const n = 3 * HOLD_CHUNK + 5;
    for (let i = 0; i < n; i++) {
      const r = row(i);
      expect(t.add(`b${i}`, r.c, r.a, r.e, r.d, r.st, r.at, r.f)).toBe(i);
    }
    for (const i of [0, HOLD_CHUNK - 1, HOLD_CHUNK, 2 * HOLD_CHUNK + 1, n - 1]) expect(read(t, `b${i}`)).toEqual(row(i));
    // Each setter on a slot either side of a chunk boundary; its neighbours untouched.
    for (const s of [HOLD_CHUNK - 1, HOLD_CHUNK]) {
      t.setA(s, 42);
      t.setE(s, 43);
      t.setAt(s, 44);
      t.setSt(s, 3);
      t.setF(s, 9);
      expect(read(t, `b${s}`)).toEqual({ ...row(s), a: 42, e: 43, at: 44, st: 3, f: 9 });
    }
    expect(read(t, `b${HOLD_CHUNK - 2}`)).toEqual(row(HOLD_CHUNK - 2));
    expect(read(t, `b${HOLD_CHUNK + 1}`)).toEqual(row(HOLD_CHUNK + 1));
  });

  it('reuses freed slots in any chunk, most recently freed first, before making new ones', () => {
    const t = new HoldTable();
    const n = 2 * HOLD_CHUNK + 10;
    for (let i = 0; i < n; i++) t.add(`b${i}`, 'c', 1, 1, 1, 4, 1, 7);
    const freed = [3, HOLD_CHUNK + 7, 2 * HOLD_CHUNK + 2];
    for (const s of freed) t.delete(`b${s}`);
    expect(t.size).toBe(n - 3);
    for (const s of [...freed].reverse()) {
      expect(t.add(`new${s}`, 'd', 2, 0, 2, 0, 0, 0)).toBe(s);
      expect(read(t, `new${s}`)).toEqual({ c: 'd', a: 2, e: 0, d: 2, st: 0, at: 0, f: 0 });
    }
    expect(t.add('next', 'c', 1, 1, 1, 0, 0, 0)).toBe(n);
    expect(t.size).toBe(n + 1);
  });

  it('counts and lists ids that share their last characters (the simulator ends every id in its imp id)', () => {
    const t = new HoldTable();
    const ids = Array.from({ length: 20_000 }, (_, i) => `req${i}-1`);
    ids.forEach((id, i) => t.add(id, 'c', i, 0, 0, 0, 0, 0));
    for (let i = 0; i < ids.length; i += 2) t.delete(ids[i]);
    expect(t.size).toBe(10_000);
    const listed = new Map(t.entries());
    expect(listed.size).toBe(10_000);
    for (let i = 1; i < ids.length; i += 2) {
      expect(t.has(ids[i])).toBe(true);
      expect(t.a(listed.get(ids[i])!)).toBe(i);
    }
    expect(t.has(ids[0])).toBe(false);
    expect(t.slot(ids[0])).toBe(-1);
  });
});
