import { describe, expect, it } from 'vitest';
import { BidderError } from '../src/errors/codes.js';
import { createValidator } from '../src/validate/validate.js';

/**
 * Two device fields the bidder reads as numbers (a review's odd inputs): `geo.utcoffset` was not
 * range-checked, so −90000 minutes made the user's local hour 3 and 1e300 made it 0, feeding the
 * hour feature and campaigns' dayparting; a fractional `devicetype` (2.7) was featurised as 2
 * (an int hash) while targeting read "2.7". Now both are refused as wrongly typed fields (400
 * BAD_FIELD_TYPE), as `cattax` below 1 and every other out-of-range or non-integer field the
 * schema types: utcoffset outside −720..+840 minutes (UTC−12:00 to UTC+14:00, the offsets in use),
 * devicetype not an integer (OpenRTB's type for it).
 */
const validate = createValidator({ maxTmaxMs: 10_000, maxImps: 20 });
const base = { id: 'r', imp: [{ id: '1', banner: { w: 300, h: 250 } }] };
const code = (device: object) => {
  try {
    validate({ ...base, device });
    return '';
  } catch (err) {
    return (err as BidderError).code;
  }
};

describe('device.geo.utcoffset and device.devicetype', () => {
  it('refuses a utcoffset outside -720..+840 minutes, and reads the offsets in use', () => {
    for (const utcoffset of [-90000, 1e300, -721, 841, Infinity, '-900000']) expect(code({ geo: { utcoffset } }), String(utcoffset)).toBe('BAD_FIELD_TYPE');
    for (const utcoffset of [-720, -300, 0, 330, 345, 840, '-300', null]) expect(code({ geo: { utcoffset } }), String(utcoffset)).toBe('');
  });

  it('refuses a devicetype that is not an integer, as OpenRTB types it', () => {
    for (const devicetype of [2.7, '2.5', 1e-9]) expect(code({ devicetype }), String(devicetype)).toBe('BAD_FIELD_TYPE');
    for (const devicetype of [1, 2, 7, 8, '4', null]) expect(code({ devicetype }), String(devicetype)).toBe('');
    expect((validate({ ...base, device: { devicetype: '4' } }) as { device: { devicetype: number } }).device.devicetype).toBe(4);
  });
});
