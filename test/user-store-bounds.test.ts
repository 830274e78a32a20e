import { describe, expect, it } from 'vitest';
import { readSettings } from '../src/config/policies.js';

/**
 * frequencyMaxUsers and profileMaxUsers took up to 100,000,000, but each store is a Map, which
 * holds at most 2^24 (16,777,216) entries: past it the store's writes threw and its users were
 * neither capped nor evicted. Both are now bounded at 16,000,000.
 */
describe('the user stores\' bounds', () => {
  it('are refused past 16,000,000, each by its name', () => {
    for (const name of ['frequencyMaxUsers', 'profileMaxUsers'] as const) {
      const problems = readSettings('policies', { [name]: 20_000_000 }).problems;
      expect(problems, name).toHaveLength(1);
      expect(problems[0]).toContain(name);
      expect(problems[0]).toMatch(/16000000|16,000,000/);
      expect(readSettings('policies', { [name]: 16_000_000 }).problems, name).toEqual([]);
    }
  });
});
