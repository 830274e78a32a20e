import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BidderError } from '../src/errors/codes.js';
import { createValidator } from '../src/validate/validate.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * Limits that refused a whole valid request (review): 21 banner imps were 400 TOO_MANY_IMPS
 * (maxImps 20) and `tmax: 12000` was 400 BAD_TMAX (maxTmaxMs 10000). Now the first maxImps imps
 * are planned and the rest get no bid, and tmax is clamped to maxTmaxMs; a tmax of 0 or less, or
 * not an integer, is still refused.
 */
const imp = (id: number, w = 300, h = 250) => ({ id: String(id), banner: { w, h } });
const site = { id: 's-news', domain: 'news.example', cat: ['IAB12'] };
// 1x1: no creative of the demo has it, so such an imp is never bid.
const unbiddable = (n: number) => Array.from({ length: n }, (_, i) => imp(i + 1, 1, 1));

describe('validator limits', () => {
  const validate = createValidator({ maxTmaxMs: 10_000, maxImps: 20 });
  const code = (req: unknown) => {
    try {
      validate(req);
      return '';
    } catch (err) {
      return (err as BidderError).code;
    }
  };

  it('keeps the first maxImps imps; those past it are neither planned nor validated', () => {
    const req = validate({ id: 'r', imp: Array.from({ length: 25 }, (_, i) => imp(i + 1)) });
    expect(req.imp.map((i) => i.id)).toEqual(Array.from({ length: 20 }, (_, i) => String(i + 1)));
    expect(code({ id: 'r', imp: [...Array.from({ length: 20 }, (_, i) => imp(i + 1)), { banner: 'x' }] })).toBe('');
    expect(code({ id: 'r', imp: [{ banner: {} }, ...Array.from({ length: 20 }, (_, i) => imp(i + 1))] })).toBe('BAD_IMP');
  });

  it('clamps tmax to maxTmaxMs; 0, negative or fractional stays BAD_TMAX', () => {
    expect(validate({ id: 'r', imp: [imp(1)], tmax: 12_000 }).tmax).toBe(10_000);
    expect(validate({ id: 'r', imp: [imp(1)], tmax: 10_000 }).tmax).toBe(10_000);
    expect(validate({ id: 'r', imp: [imp(1)], tmax: 300 }).tmax).toBe(300);
    for (const tmax of [0, -5, 1.5, '300']) expect(code({ id: 'r', imp: [imp(1)], tmax })).toBe('BAD_TMAX');
  });
});

describe('limits on the real bidder', () => {
  let t: TestBidder;
  beforeAll(async () => (t = await startBidder()));
  afterAll(() => t?.close());

  it('21 imps: the first 20 are bid, the 21st is not', async () => {
    const past = await t.bid({ id: 'past', tmax: 3000, site, imp: [...unbiddable(20), imp(21)] });
    expect(past.status, await past.text()).toBe(204);
    const within = await t.bid({ id: 'within', tmax: 3000, site, imp: [...unbiddable(19), imp(20), imp(21)] });
    expect(within.status).toBe(200);
    expect((await within.json()).seatbid.flatMap((s: { bid: Array<{ impid: string }> }) => s.bid.map((b) => b.impid))).toEqual(['20']);
  });

  it('tmax 12000 is bid as 10000', async () => {
    const r = await t.bid({ id: 'long', tmax: 12_000, site, imp: [imp(1)] });
    expect(r.status, await r.clone().text()).toBe(200);
  });
});
