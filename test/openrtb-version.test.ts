import { describe, expect, it } from 'vitest';
import { checkHeaders } from '../src/decode/decode.js';

describe('x-openrtb-version', () => {
  it('takes any 2.x, a bare 2 included, and refuses other majors', () => {
    // Before: "2" was refused with "must be a 2.x version: 2".
    for (const v of ['', '2', '2.0', '2.5', '2.6', '2.5.1', '2.6-202309']) expect(() => checkHeaders('application/json', v), v).not.toThrow();
    for (const v of ['3.0', '3', '20', '2.', '2x', '1.9', '2.6 x']) expect(() => checkHeaders('application/json', v), v).toThrow(expect.objectContaining({ code: 'BAD_VERSION' }));
  });
});
