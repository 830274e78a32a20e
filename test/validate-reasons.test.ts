import { describe, expect, it } from 'vitest';
import { BidderError } from '../src/errors/codes.js';
import { createValidator } from '../src/validate/validate.js';

const validate = createValidator({ maxTmaxMs: 10_000, maxImps: 20 });
const refusal = (req: unknown) => {
  try {
    validate(req);
  } catch (err) {
    return err as BidderError;
  }
  throw new Error('accepted');
};

describe('refusal reasons', () => {
  // 25 imps of Prebid Server's fixtures carry no media object (only `ext`, `tagid`, a floor). The
  // schema's first alternative made the reason say that `banner` was required.
  it('names the imp without a media object, not one alternative of the four', () => {
    const err = refusal({ id: 'r', imp: [{ id: '1', banner: { w: 300, h: 250 } }, { id: '2', tagid: 'slot', ext: { prebid: {} } }] });
    expect(err.code).toBe('NO_MEDIA');
    expect(err.message).toBe('each imp needs a banner, video, native or audio object: /imp/1 has none');
  });

  it('says what is wrong with a media object that is there but null', () => {
    const err = refusal({ id: 'r', imp: [{ id: '1', banner: null }] });
    expect(err.code).toBe('NO_MEDIA');
    expect(err.message).not.toMatch(/has none/);
    expect(err.message).toMatch(/^each imp needs a banner, video, native or audio object: \/imp\/0\/banner must be /);
  });

  it('keeps the schema’s own words for other refusals', () => {
    const err = refusal({ id: 'r', imp: [{ id: '1', banner: { w: 300, h: 250 }, bidfloor: -1 }] });
    expect(err.code).toBe('BAD_FLOOR');
    expect(err.message).toBe('bidfloor must be a finite number >= 0: /imp/0/bidfloor must be >= 0');
  });
});
