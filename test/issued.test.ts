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
});
