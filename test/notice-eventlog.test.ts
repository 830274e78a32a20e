import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ByteWriter } from '../src/json/bytes.js';
import { writeNoticeRecord, type NoticeRecord } from '../src/eventlog/records.js';

const NUM = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(NaN, Infinity, -0, 0.1 + 0.2, 1e21, 5e-7));
const STR = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{0,16}$/), fc.string({ unit: 'binary', maxLength: 12 }), fc.constantFrom('a"b', 'x\\y', 'é', '\ud800', '\n', '😀'));
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });

describe('writeNoticeRecord', () => {
  it("writes JSON.stringify(rec) + '\\n' as UTF-8 for a record in NoticeRecord's key order, undefined fields left out", () => {
    const w = new ByteWriter(16);
    fc.assert(
      fc.property(
        fc.constantFrom('win', 'billing', 'impression', 'loss', 'click', 'conversion'),
        NUM,
        STR,
        STR,
        STR,
        fc.tuple(opt(NUM), opt(fc.integer()), opt(NUM), opt(fc.constant(true as const)), opt(fc.constant(true as const))),
        (type, ts, bidId, campaignId, creativeId, [priceCpmUsd, lossReason, minToWinCpmUsd, unpriced, overspend]) => {
          const rec = { type, ts, bidId, campaignId, creativeId, priceCpmUsd, lossReason, minToWinCpmUsd, unpriced, overspend } as NoticeRecord;
          // Written after whatever the buffer already holds (records of one turn share it).
          const from = w.pos;
          writeNoticeRecord(w, rec);
          expect(Buffer.compare(w.buf.subarray(from, w.pos), Buffer.from(JSON.stringify(rec) + '\n', 'utf8'))).toBe(0);
          if (w.pos > 4096) w.pos = 0;
        },
      ),
      { numRuns: 5000 },
    );
  });
});
