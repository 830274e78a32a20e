import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseQuery } from '../src/notices/query.js';

// Names a notice reads, their prefixes and longer names that share them, and odd ones.
const NAMES = ['b', 'c', 'k', 'p', 'u', 'r', 'bb', 'q', 'e', 'x', 'uk', 't', 's', 'price', 'mtw', 'loss', 'clk', '', 'pr', 'prices', 'bx', '?b', 'a b', 'é'];
// Every character URLSearchParams treats apart ('&', '=', '%', '+', '?', past ASCII, a lone surrogate) and plain ones.
const CHARS = ['&', '=', '%', '+', '?', 'é', '😀', '\ud800', '%2', '%41', '%zz', '$', '{', '}', ' ', 'b', 'c', 'p', 'r', 'i', 'e', 'x', 'u', 'k', 's', 'q', 'm', 't', 'w', '1', '.', '-', '_'];

describe('parseQuery reads a query as URLSearchParams does', () => {
  it('every name asked gives the same value (random queries of special and plain characters)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...CHARS), { maxLength: 60 }), (chars) => {
        const query = chars.join('');
        const want = new URLSearchParams(query);
        const got = parseQuery(query);
        for (const name of [...NAMES, ...[...want.keys()]]) expect(got.get(name)).toBe(want.get(name));
      }),
      { numRuns: 4000 },
    );
  });

  it('notice queries: pairs of known names with plain values, repeats, empty pairs and bare names', () => {
    const pair = fc.tuple(fc.constantFrom(...NAMES), fc.option(fc.stringMatching(/^[A-Za-z0-9._~\-=]{0,12}$/), { nil: undefined }));
    fc.assert(
      fc.property(fc.array(pair, { maxLength: 20 }), fc.constantFrom('', '&', '&&'), (pairs, tail) => {
        const query = pairs.map(([n, v]) => (v === undefined ? n : `${n}=${v}`)).join(tail === '&&' ? '&&' : '&') + tail;
        const want = new URLSearchParams(query);
        const got = parseQuery(query);
        for (const name of NAMES) expect(got.get(name)).toBe(want.get(name));
      }),
      { numRuns: 4000 },
    );
  });
});
