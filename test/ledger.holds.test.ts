import { describe, expect, it } from 'vitest';
import { HoldTable } from '../src/ledger/holds.js';

/** What one remembered bid holds, read back from the columns. */
function read(t: HoldTable, bidId: string) {
  const s = t.slot(bidId);
  return s < 0 ? undefined : { c: t.campaign(s), a: t.a[s], e: t.e[s], d: t.d[s], st: t.st[s], at: t.at[s], f: t.f[s] };
}

describe('hold table', () => {
  it('remembers each bid in its own slot, through growth, deletes and reused slots', () => {
    const t = new HoldTable();
    const want = new Map<string, ReturnType<typeof read>>();
    // Ids ending in every character class, so every shard is used; enough of them to grow the columns twice.
    for (let i = 0; i < 5000; i++) {
      const id = `bid-${i.toString(36)}`;
      const row = { c: `camp-${i % 7}`, a: 1000 + i * 0.5, e: 1_796_000_000_000 + i, d: 20_790 + (i % 3), st: i % 5, at: i % 2 ? 1_796_000_000_500 + i : 0, f: i % 4 };
      t.add(id, row.c, row.a, row.e, row.d, row.st, row.at, row.f);
      want.set(id, row);
      if (i % 3 === 0) {
        const gone = `bid-${(i >> 1).toString(36)}`;
        t.delete(gone);
        want.delete(gone);
      }
    }
    expect(t.size).toBe(want.size);
    for (const [id, row] of want) expect(read(t, id)).toEqual(row);
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
});
