import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, NBR } from '../src/errors/codes.js';

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
});
