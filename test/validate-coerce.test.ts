import { describe, expect, it } from 'vitest';
import { BidderError } from '../src/errors/codes.js';
import { createValidator } from '../src/validate/validate.js';

/**
 * Fields that feed only features and targeting, sent in another JSON type (review): a numeric
 * `site.id`, `site.publisher.id` or segment id, a `device.geo.utcoffset` or `device.devicetype` in
 * a string, each refused the whole request (400 BAD_FIELD_TYPE). Now read where the reading is
 * unambiguous (schema `x-coerce`): a number as its decimal string, a numeric string as its number.
 * Money and format fields stay strict, and a value with no such reading is still refused.
 */
const validate = createValidator({ maxTmaxMs: 10_000, maxImps: 20 });
const base = { id: 'r', imp: [{ id: '1', banner: { w: 300, h: 250 } }] };
const code = (req: object) => {
  try {
    validate({ ...base, ...req });
    return '';
  } catch (err) {
    return (err as BidderError).code;
  }
};

describe('coerced feature and targeting fields', () => {
  it('reads numeric ids as strings and numeric strings as numbers', () => {
    const req = validate({
      ...base,
      site: { id: 123, publisher: { id: 456 } },
      device: { devicetype: '2', geo: { utcoffset: '-300' } },
      user: { id: 77, data: [{ id: 9, segment: [{ id: 12341318394918 }, { id: 'auto-intender' }] }] },
    }) as any;
    expect([req.site.id, req.site.publisher.id]).toEqual(['123', '456']);
    expect([req.device.devicetype, req.device.geo.utcoffset]).toEqual([2, -300]);
    expect([req.user.id, req.user.data[0].id, req.user.data[0].segment.map((s: { id: string }) => s.id)]).toEqual(['77', '9', ['12341318394918', 'auto-intender']]);
    const app = validate({ ...base, app: { id: 1, bundle: 1234567890, publisher: { id: 5 } } }) as any;
    expect([app.app.id, app.app.bundle, app.app.publisher.id]).toEqual(['1', '1234567890', '5']);
  });

  it('refuses what has no such reading, and keeps money and format fields strict', () => {
    expect(code({ device: { devicetype: 'phone' } })).toBe('BAD_FIELD_TYPE');
    expect(code({ device: { geo: { utcoffset: '-3h' } } })).toBe('BAD_FIELD_TYPE');
    expect(code({ site: { id: { x: 1 } } })).toBe('BAD_FIELD_TYPE');
    expect(code({ site: { publisher: { id: true } } })).toBe('BAD_FIELD_TYPE');
    expect(code({ imp: [{ id: '1', bidfloor: '1.5', banner: { w: 300, h: 250 } }] })).toBe('BAD_FLOOR');
    expect(code({ imp: [{ id: '1', banner: { w: '300', h: 250 } }] })).toBe('BAD_MEDIA');
    expect(code({ imp: [{ id: 1, banner: { w: 300, h: 250 } }] })).toBe('BAD_IMP');
    expect(code({ imp: [{ id: '1', banner: { w: 300, h: 250 }, pmp: { deals: [{ id: 123 }] } }] })).toBe('BAD_FIELD_TYPE');
  });
});
