import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BidderError, ERRORS, NBR } from '../src/errors/codes.js';
import { createValidator } from '../src/validate/validate.js';

const readme = readFileSync('docs/errors.md', 'utf8');

describe('docs/errors.md tables follow src/errors/codes.ts', () => {
  it('lists every error code with its HTTP status and reason, and no other', () => {
    const rows = [...readme.matchAll(/^\| `([A-Z0-9_]+)` \| (\d{3}) \| (.+) \|$/gm)].map((m) => [m[1], Number(m[2]), m[3]]);
    expect(rows).toEqual(Object.entries(ERRORS).map(([k, v]) => [k, v.status, v.reason]));
  });
  it('lists every no-bid reason code', () => {
    const rows = [...readme.matchAll(/^\| (\d+) \| `([A-Z_]+)` \|$/gm)].map((m) => [m[2], Number(m[1])]);
    expect(rows).toEqual(Object.entries(NBR));
  });

  // The reason said 'a known ISO-4217 code', while the schema checks the form alone: a code of
  // three upper-case letters with no rate (ZZZ) passes and is a CURRENCY no-bid, not a 400.
  it("BAD_CURRENCY's reason says what is checked: the form, not whether the code is known", () => {
    const validate = createValidator({ maxTmaxMs: 10_000, maxImps: 20 });
    const req = (imp: Record<string, unknown>, top: Record<string, unknown> = {}) => ({ id: 'r1', imp: [{ id: '1', banner: { w: 300, h: 250 }, ...imp }], ...top });
    expect(() => validate(req({ bidfloor: 1, bidfloorcur: 'ZZZ' }, { cur: ['ZZZ'] }))).not.toThrow();
    for (const bad of [req({ bidfloor: 1, bidfloorcur: 'usd' }), req({}, { cur: ['US'] })]) {
      let code = '';
      try {
        validate(bad);
      } catch (e) {
        code = (e as BidderError).code;
      }
      expect(code).toBe('BAD_CURRENCY');
    }
    expect(ERRORS.BAD_CURRENCY.reason).not.toMatch(/known/);
    expect(ERRORS.BAD_CURRENCY.reason).toMatch(/three upper-case letters/);
  });
});
