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

  it('at the cap the oldest go first, across growth and wrap-around', () => {
    let now = 0;
    // A cap above the first ring size (1,024): the ring grows twice, then wraps.
    const max = 3000;
    const issued = createIssuedBids(max, 60_000, () => now);
    for (let i = 0; i < 4500; i++) issued.add(`b${i}`, { ...bid, pctr: i / 1e4, bidCpmUsd: i });
    expect(issued.size).toBe(max);
    expect(issued.get('b0')).toBeUndefined();
    expect(issued.get('b1499')).toBeUndefined();
    for (const i of [1500, 2047, 2048, 3000, 4095, 4499]) expect(issued.get(`b${i}`)).toEqual({ ...bid, pctr: i / 1e4, bidCpmUsd: i });
    now += 1;
    issued.add('late', bid);
    expect(issued.get('b1500')).toBeUndefined();
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
