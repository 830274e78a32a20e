import { afterEach, describe, expect, it, vi } from 'vitest';
import { createIssuedBids } from '../src/notices/issued.js';

const bid = { pctr: 0.01, userKey: 'u', categories: [], segment: 'x', bidCpmUsd: 1 };

describe('issued bids', () => {
  afterEach(() => vi.useRealTimers());

  it('expire on the injected clock', () => {
    let now = 1_000_000;
    const issued = createIssuedBids(10, 60_000, () => now);
    issued.add('b1', bid);
    now += 59_999;
    expect(issued.get('b1')).toEqual(bid);
    now += 2;
    expect(issued.get('b1')).toBeUndefined();
  });

  it('set no timer when they are read and written', () => {
    vi.useFakeTimers();
    const issued = createIssuedBids(10, 60_000, () => 5);
    issued.add('b1', bid);
    issued.get('b1');
    issued.get('b2');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('at the cap the oldest go first, across chunks and wrap-around', () => {
    let now = 0;
    // A cap of 10,000: a ring of 5 chunks of 4,096 slots, wrapped twice by 45,000 bids.
    const max = 10_000;
    const issued = createIssuedBids(max, 60_000, () => now);
    for (let i = 0; i < 45_000; i++) issued.add(`b${i}`, { ...bid, pctr: i / 1e5, bidCpmUsd: i });
    expect(issued.size).toBe(max);
    expect(issued.get('b0')).toBeUndefined();
    expect(issued.get('b34999')).toBeUndefined();
    for (const i of [35_000, 36_863, 36_864, 40_959, 40_960, 44_999]) expect(issued.get(`b${i}`)).toEqual({ ...bid, pctr: i / 1e5, bidCpmUsd: i });
    now += 1;
    issued.add('late', bid);
    expect(issued.get('b35000')).toBeUndefined();
    expect(issued.get('late')).toEqual(bid);
  });

  it('forgets the expired as bids are added, so it holds what the TTL keeps, not the cap', () => {
    let now = 0;
    const issued = createIssuedBids(100_000, 1_000, () => now);
    // 10 bids a millisecond for 5 s; a TTL of 1 s keeps about 10,000 of them.
    for (let t = 0; t < 5_000; t++) {
      now = t;
      for (let k = 0; k < 10; k++) issued.add(`b${t}-${k}`, bid);
    }
    expect(issued.size).toBe(10_010);
    expect(issued.get('b3998-0')).toBeUndefined();
    expect(issued.get('b3999-9')).toEqual(bid);
    expect(issued.get('b4999-9')).toEqual(bid);
  });
});

describe('issued bids expired unheard', () => {
  /** A ring whose `onUnheard` calls are collected as [campaign, creative, exchange, segment, bid, first price]. */
  function ring(max: number, ttlMs: number, clock: () => number) {
    const told: unknown[][] = [];
    const issued = createIssuedBids(max, ttlMs, clock, (...a) => told.push(a));
    const add = (id: string, firstPrice = true) => {
      issued.add(id, { ...bid, segment: `ex|${id}`, bidCpmUsd: id.length });
      issued.describe(id, `c-${id}`, `cr-${id}`, 'ex', firstPrice);
    };
    return { issued, told, add };
  }

  it('are told as the expired are dropped: the described ones no notice was heard for, and only they', () => {
    let now = 0;
    const { issued, told, add } = ring(10, 1_000, () => now);
    add('silent');
    add('won');
    add('lost2', false);
    issued.add('undescribed', bid);
    issued.heard('won');
    // Heard for a bid it no longer holds, or never held: nothing.
    issued.heard('nobody');
    now = 1_000;
    add('next');
    expect(told).toEqual([]);
    now = 1_001;
    add('last');
    expect(told).toEqual([
      ['c-silent', 'cr-silent', 'ex', 'ex|silent', 6, true],
      ['c-lost2', 'cr-lost2', 'ex', 'ex|lost2', 5, false],
    ]);
    expect(issued.size).toBe(2);
  });

  it('are not told when the cap drops them before their expiry: their notices could still have come', () => {
    let now = 0;
    const { told, add } = ring(2, 1_000, () => now);
    add('a');
    add('b');
    add('c');
    expect(told).toEqual([]);
    now = 2_000;
    add('d');
    expect(told.map((t) => t[0])).toEqual(['c-b', 'c-c']);
  });

  it('keep what describe and heard set across chunks and wrap-around', () => {
    let now = 0;
    const { issued, told, add } = ring(10_000, 1_000, () => now);
    // Across two chunks of 4,096 slots and into a third; every third bid heard.
    for (let i = 0; i < 9_000; i++) {
      add(`b${i}`);
      if (i % 3 === 0) issued.heard(`b${i}`);
    }
    now = 1_001;
    add('after');
    expect(told.length).toBe(9_000 - Math.ceil(9_000 / 3));
    expect(told.every((t) => Number((t[0] as string).slice(3)) % 3 !== 0)).toBe(true);
    // The ring (5 chunks), emptied of them, wraps: each expiry tells only what was added since.
    for (let round = 0; round < 3; round++) {
      told.length = 0;
      for (let i = 0; i < 7_000; i++) add(`w${round}-${i}`);
      now += 1_001;
      add(`end${round}`);
      expect(told.length).toBe(7_001);
      expect(issued.size).toBe(1);
    }
  });
});
