import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteWriter } from '../src/json/bytes.js';

const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: fc.constantFrom('"', '\\', '\n', '\u0001', '\u007f', '\u0080', '\ud800', '\udc00', 'a', 'é', '€', '😀', '&', '<', '>', "'", '%', ' ', '~', '(') }));
const num = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(-0, 0, 2 ** 53 - 1, -(2 ** 53) + 1, 2 ** 53, 1e21, 1780000000123, 0.1, -7, NaN, Infinity, -Infinity), fc.maxSafeInteger());

describe('ByteWriter', () => {
  // One writer for every run, started small: runs write over the stale bytes of earlier ones and
  // grow it, which must give the same bytes as a string built and then encoded.
  const w = new ByteWriter(8);
  const bytes = (write: () => void): Buffer => {
    w.pos = 0;
    write();
    return w.copy();
  };

  it('text: the UTF-8 of the string, as Buffer.from writes it (lone surrogates too)', () => {
    fc.assert(fc.property(text, (s) => {
      expect(bytes(() => w.text(s)).equals(Buffer.from(s))).toBe(true);
    }), { numRuns: 1000 });
  });

  it('str: JSON.stringify of the string, as UTF-8', () => {
    fc.assert(fc.property(text, (s) => {
      expect(bytes(() => w.str(s)).equals(Buffer.from(JSON.stringify(s)))).toBe(true);
    }), { numRuns: 1000 });
  });

  it('num: JSON.stringify of the number (null when not finite, -0 as 0)', () => {
    fc.assert(fc.property(num, (n) => {
      expect(bytes(() => w.num(n)).toString()).toBe(JSON.stringify(n));
    }), { numRuns: 2000 });
  });

  it('number: String of the number', () => {
    fc.assert(
      fc.property(num, (n) => {
        expect(bytes(() => w.number(n)).toString()).toBe(String(n));
      }),
      { numRuns: 2000 },
    );
  });

  it('uri: encodeURIComponent of the string, which throws on a lone surrogate here too', () => {
    fc.assert(
      fc.property(text, (s) => {
        if (!s.isWellFormed()) expect(() => w.uri(s)).toThrow(URIError);
        else expect(bytes(() => w.uri(s)).toString()).toBe(encodeURIComponent(s));
      }),
      { numRuns: 1000 },
    );
  });

  it('escapeXmlFrom: what follows `from` with & < > " \' as character references, the bytes before it untouched', () => {
    const xml = (s: string) => s.replaceAll('&', '&#38;').replaceAll('<', '&#60;').replaceAll('>', '&#62;').replaceAll('"', '&#34;').replaceAll("'", '&#39;');
    fc.assert(
      fc.property(text, text, (before, s) => {
        const got = bytes(() => {
          w.text(before);
          const from = w.pos;
          w.text(s);
          w.escapeXmlFrom(from);
        });
        // Each piece is encoded on its own: a lone high surrogate that ends `before` and a lone low
        // one that starts `s` are two replacement characters, not the pair their concatenation is.
        expect(got.equals(Buffer.concat([Buffer.from(before), Buffer.from(xml(s))]))).toBe(true);
      }),
      { numRuns: 1000, examples: [['\ud800', '\udc00']] },
    );
  });

  it('pieces in a row equal their encodings in a row; copy takes what follows `from`', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('text', 'str', 'num'), text, num), { maxLength: 20 }), (parts) => {
        w.pos = 0;
        w.text('head');
        const from = w.pos;
        // Each piece's UTF-8 in turn (two lone surrogates in adjacent pieces stay two, not a pair).
        const want: Buffer[] = [];
        for (const [kind, s, n] of parts) {
          if (kind === 'num') (w.num(n), want.push(Buffer.from(JSON.stringify(n))));
          else if (kind === 'str') (w.str(s), want.push(Buffer.from(JSON.stringify(s))));
          else (w.text(s), want.push(Buffer.from(s)));
        }
        expect(w.copy(from).equals(Buffer.concat(want))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
