import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * simulate's --feedback / --loss-notices where nothing reads them: the request stream (no --json or
 * --plot) printed its requests and ignored them, `--feedback bogus` included, and --ipinyou wrote
 * its day without a word.
 */
describe('simulate --feedback / --loss-notices outside the pacing evaluation', () => {
  if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
  const cli = (...args: string[]) => spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8', timeout: 120_000 });
  const said = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('bidder:'));

  it('the request stream refuses them in one line, exit 2, nothing printed', () => {
    for (const flags of [['--feedback', 'win-only'], ['--loss-notices', 'true'], ['--feedback', 'bogus'], ['--feedback', 'hourly', '--loss-notices', 'auto']]) {
      const run = cli('simulate', '--requests', '10', ...flags);
      expect(run.status, run.stderr).toBe(2);
      expect(run.stdout).toBe('');
      expect(said(run.stderr)).toEqual(['bidder: --feedback and --loss-notices are for the in-process pacing evaluation (--json, --plot), not the request stream']);
    }
  });

  it('--ipinyou refuses them in one line, exit 2, nothing written', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-fb-'));
    try {
      const out = join(dir, 'day.txt');
      const run = cli('simulate', '--requests', '2000', '--ctr', 'oracle', '--ipinyou', out, '--feedback', 'win-only');
      expect(run.status, run.stderr).toBe(2);
      expect(said(run.stderr)).toEqual(['bidder: --feedback and --loss-notices are for the in-process pacing evaluation (--json, --plot), not --ipinyou (the day written holds no notices)']);
      expect(existsSync(out)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
