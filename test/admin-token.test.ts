import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSettings } from '../src/config/policies.js';

/**
 * The admin token was never checked: a Kubernetes secret file's trailing newline (`tok\n`) made
 * admin unusable, every client getting 401, and `a` was taken although a notice secret needs 16
 * characters. Such a token is now a settings problem, reported with the others at start.
 */
const RULE = /adminToken: .*16 characters or more, with no whitespace or control character/;

describe('the admin token at start', () => {
  const dir = mkdtempSync(join(tmpdir(), 'admin-token-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is refused shorter than 16 characters, or with whitespace or a control character; empty turns admin off', () => {
    const problems = (adminToken: string) => readSettings('policies', { adminToken }).problems;
    for (const bad of ['a', 'fifteen-chars-x', 'a-long-enough-token\n', 'a-long-enough token', '\ta-long-enough-token', 'a-long-enough-token\u0000', 'a-long-enough-token\u00a0']) {
      const p = problems(bad);
      expect(p, JSON.stringify(bad)).toHaveLength(1);
      expect(p[0]).toMatch(RULE);
    }
    // The token itself is never echoed: it is a secret.
    expect(problems('a-long-enough-token\n')[0]).not.toContain('a-long-enough-token');
    for (const good of ['', 'sixteen-chars-xx', 'Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==', 'tok!@#$%^&*()_+-=[]{}|;:,.<>?/~`']) expect(problems(good), JSON.stringify(good)).toEqual([]);
  });

  it('`serve` with ADMIN_TOKEN=$\'tok\\n\' stops with exit 2, naming the rule, among the other problems', async () => {
    const policies = join(dir, 'policies');
    cpSync('policies', policies, { recursive: true });
    const yaml = join(policies, 'bidder.yaml');
    // Another problem beside it: one message lists both.
    writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('dir: var/events', `dir: ${join(dir, 'events')}`).replace('journalPath: var/ledger.journal', `journalPath: ${join(dir, 'journal')}`) + 'maxImps: 0\n');
    const child = spawn(process.execPath, ['dist/cli.js', 'serve', '--policies', policies, '--port', '0', '--host', '127.0.0.1'], {
      env: { ...process.env, ADMIN_TOKEN: 'tok\n', NOTICE_SECRET: 'admin-token-secret-0123456789' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      child.once('exit', resolve);
      // Started after all (before the check): stopped, and the test fails on the exit code.
      const started = setInterval(() => /bidder listening/.test(out) && (clearInterval(started), child.kill('SIGTERM')), 100);
      child.once('exit', () => clearInterval(started));
    });
    expect(code, out).toBe(2);
    expect(out).toMatch(RULE);
    expect(out).toMatch(/maxImps/);
  }, 90_000);
});
