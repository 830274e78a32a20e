import { describe, expect, it } from 'vitest';
import { ShardedMap } from '../src/util/sharded-map.js';

/**
 * The id map of `train --events` and `bidder report` (src/model/eventlog-data.ts, src/report/tally.ts):
 * a log of more bids than one V8 Map holds (2^24) is read through it. Filling 2^24 ids here would
 * take minutes, so a shard's limit is made small: the map then holds as many times more ids as it
 * has shards, whatever their shape.
 */
describe('ShardedMap', () => {
  // The bidder's ids end in a base-36 counter; the simulator's all end in their imp's id.
  const shapes = { bidder: (i: number) => `Ab3_x9-${i.toString(36)}`, simulator: (i: number) => `sim-3-${i}-1` };

  for (const [shape, id] of Object.entries(shapes)) {
    it(`holds far more ${shape} ids than one shard's limit, each found again`, () => {
      const m = new ShardedMap<number>(8, 1000);
      // 6,000 ids over 8 shards of 1,000: a single Map of that limit would hold 1,000.
      for (let i = 0; i < 6000; i++) m.set(id(i), i);
      expect(m.size).toBe(6000);
      for (let i = 0; i < 6000; i++) expect(m.get(id(i))).toBe(i);
      expect(m.has(id(6000))).toBe(false);
      // An id already in, set again, takes no room.
      m.set(id(0), -1);
      expect(m.get(id(0))).toBe(-1);
      expect(m.size).toBe(6000);
    });
  }

  it('says so in a message of its own once a shard is full, rather than V8\'s', () => {
    const m = new ShardedMap<number>(2, 10);
    expect(() => {
      for (let i = 0; i < 21; i++) m.set(shapes.bidder(i), i);
    }).toThrow(/^more than 20 ids \(one of 2 shards holds 10\): read fewer event logs at once$/);
  });
});
