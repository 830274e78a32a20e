import { describe, expect, it } from 'vitest';
import { readSettings } from '../src/config/policies.js';

/**
 * A notice secret is taken byte for byte: one process of a fleet that read it with a secret file's
 * trailing newline signed with another key, and its siblings refused its notices as forged (403:
 * billed, never recorded) with no word at start; 16 spaces were taken as a secret; a short one
 * failed only after the model had loaded (secrets review). Each is now a settings problem, listed
 * with the others at start (exit 2).
 */
const RULE = /16 characters or more, with no whitespace or control character/;

describe('the notice secret at start', () => {
  it('is refused shorter than 16 characters, or with whitespace or a control character; empty means one is generated', () => {
    const problems = (noticeSecret: string) => readSettings('policies', { noticeSecret }).problems;
    for (const bad of ['short', 'fleetsecret-0123456789abcdef\n', ' '.repeat(16), 'fleetsecret 0123456789abcdef', 'fleetsecret-0123456789\u0000abc']) {
      const p = problems(bad);
      expect(p, JSON.stringify(bad)).toHaveLength(1);
      expect(p[0]).toMatch(/\/noticeSecret: /);
      expect(p[0]).toMatch(RULE);
    }
    // Never echoed: it is a secret.
    expect(problems('fleetsecret-0123456789abcdef\n')[0]).not.toContain('fleetsecret');
    for (const good of ['', 'fleetsecret-0123456789abcdef', 'Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==']) expect(problems(good), JSON.stringify(good)).toEqual([]);
  });

  it('refuses each previous secret of a rotation the same way, naming its place', () => {
    const p = readSettings('policies', { noticeSecretPrevious: ['previous-secret-0123456789', 'previous-secret-9876543210\n'] }).problems;
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/\/noticeSecretPrevious\/1: .*16 characters or more, with no whitespace or control character/);
  });
});
