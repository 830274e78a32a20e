import { describe, expect, it } from 'vitest';
import { peekTmax } from '../src/decode/decode.js';

/**
 * The raw-bytes tmax that lets the bid path refuse a request that waited too long without parsing
 * it. A wrong answer could refuse a request on someone else's tmax, so anything that is not one
 * plain top-level-looking number is "cannot tell" (undefined), left to the parse.
 */
describe('peekTmax', () => {
  const b = (s: string) => Buffer.from(s);
  it('reads a plain number, with or without spaces', () => {
    expect(peekTmax(b('{"id":"1","tmax":120,"imp":[]}'), '')).toBe(120);
    expect(peekTmax(b('{"id":"1", "tmax" :\n 95 }'), 'identity')).toBe(95);
  });
  it('no tmax key at all: null (the default applies)', () => {
    expect(peekTmax(b('{"id":"1","imp":[{"id":"1"}]}'), '')).toBeNull();
  });
  it('cannot tell: key twice (one may be nested, confirm form), not a plain integer, encoded body', () => {
    expect(peekTmax(b('{"ext":{"tmax":5},"tmax":300}'), '')).toBe(5); // the quick form reads the first
    expect(peekTmax(b('{"ext":{"tmax":5},"tmax":300}'), '', true)).toBeUndefined();
    expect(peekTmax(b('{"tmax":"120"}'), '')).toBeUndefined();
    expect(peekTmax(b('{"imp":[{"id":"tmax"}]}'), '')).toBeUndefined(); // not followed by ':'
    expect(peekTmax(b('{"tmax":120.5}'), '')).toBeUndefined();
    expect(peekTmax(b('{"tmax":1e3}'), '')).toBeUndefined();
    expect(peekTmax(b('{"tmax":null}'), '')).toBeUndefined();
    expect(peekTmax(b('{"tmax":12345678901}'), '')).toBeUndefined();
    expect(peekTmax(b('{"tmax"'), '')).toBeUndefined();
    expect(peekTmax(b('{"tmax":120}'), 'gzip')).toBeUndefined();
  });
  it('confirm: a tmax nested in an object or inside a string is not the request\'s', () => {
    expect(peekTmax(b('{"imp":[{"ext":{"tmax":50}}]}'), '')).toBe(50); // the quick form cannot tell
    expect(peekTmax(b('{"imp":[{"ext":{"tmax":50}}]}'), '', true)).toBeUndefined();
    expect(peekTmax(b('{"ext":{"a\\"tmax":5}}'), '', true)).toBeUndefined();
    expect(peekTmax(b('{"site":{"name":"x\\"tmax"},"tmax":5}'), '', true)).toBeUndefined(); // twice
    expect(peekTmax(b('{"site":{"name":"x\\"tmax"},"id":"1"}'), '', true)).toBeUndefined();
    expect(peekTmax(b('{"id":"a{b[\\"","imp":[{}],"tmax":90}'), '', true)).toBe(90);
  });

  it('agrees with JSON.parse on every corpus request that has one tmax', async () => {
    const { readFileSync, readdirSync } = await import('node:fs');
    let checked = 0;
    for (const f of readdirSync('test/fixtures/corpus').filter((n) => n.endsWith('.ndjson') && !n.includes('.meta.'))) {
      for (const line of readFileSync(`test/fixtures/corpus/${f}`, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        let tmax: unknown;
        try {
          tmax = (JSON.parse(line) as { tmax?: unknown }).tmax;
        } catch {
          continue;
        }
        const peeked = peekTmax(Buffer.from(line), '', true);
        if (peeked === undefined) continue;
        expect(peeked).toBe(tmax === undefined ? null : tmax);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(2000);
  });
});
