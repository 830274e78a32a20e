import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBody } from '../src/decode/decode.js';
import { BidderError } from '../src/errors/codes.js';

/**
 * decodeBody walks the bytes for the nesting depth only when the body holds more opening brackets
 * than the limit (src/decode/decode.ts, openingsOver). It must answer as the walk before every
 * parse did: the same value, or the same error, on any body: nesting at, under and over the limit,
 * brackets inside strings, escaped quotes, other bytes, invalid JSON.
 */
function reference(body: Buffer, max: number): unknown {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) throw new BidderError('TOO_DEEP', `more than ${max} levels`);
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new BidderError('BAD_JSON');
  }
}

const outcome = (f: () => unknown) => {
  try {
    return { value: f() };
  } catch (err) {
    return { error: err instanceof BidderError ? `${err.code} ${err.message}` : String(err) };
  }
};

const piece = fc.oneof(
  fc.constantFrom('{', '}', '[', ']', '"', '\\"', '\\\\', ':', ',', '1', 'null', '"{[', ']}"', '"a\\"[{"', ' ', 'é', '😀'),
  fc.json({ depthSize: 'large' }),
);

describe('decodeBody and the depth limit', () => {
  it('answers as the byte walk before every parse: the same value or the same error', () => {
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 60 }), fc.integer({ min: 4, max: 12 }), (parts, max) => {
        const body = Buffer.from(parts.join(''));
        expect(outcome(() => decodeBody(body, '', false, { maxDecompressedBytes: 1 << 20, maxJsonDepth: max }))).toEqual(outcome(() => reference(body, max)));
      }),
      { numRuns: 3000 },
    );
  });

  it('nesting exactly at the limit parses; one level more is TOO_DEEP, whatever the brackets inside strings', () => {
    for (const max of [4, 32]) {
      for (const inStrings of [0, 5, 40]) {
        const pad = `"${'{['.repeat(inStrings)}"`;
        const at = Buffer.from(`${'['.repeat(max - 1)}{"a":${pad}}${']'.repeat(max - 1)}`);
        const over = Buffer.from(`${'['.repeat(max)}{"a":${pad}}${']'.repeat(max)}`);
        const limits = { maxDecompressedBytes: 1 << 20, maxJsonDepth: max };
        expect(outcome(() => decodeBody(at, '', false, limits))).toEqual(outcome(() => reference(at, max)));
        const got = outcome(() => decodeBody(over, '', false, limits));
        expect(got).toEqual(outcome(() => reference(over, max)));
        expect(got.error).toMatch(/^TOO_DEEP /);
      }
    }
  });
});
