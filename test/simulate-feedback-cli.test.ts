import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/** simulate's --feedback / --loss-notices (src/cli/pacing.ts FEEDBACK_OPTIONS) as a user reaches them: the built CLI. */
describe('simulate --feedback', () => {
  if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
  const cli = (...args: string[]) => spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8', timeout: 120_000 });

  it('lists both options in simulate --help', () => {
    const run = cli('simulate', '--help');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('--feedback <modes>');
    expect(run.stdout).toContain('--loss-notices <setting>');
  });

  it('runs a small pacing evaluation on a win-only exchange', () => {
    const run = cli('simulate', '--requests', '2000', '--ctr', 'oracle', '--feedback', 'win-only', '--loss-notices', 'auto', '--json');
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.requests).toBe(2000);
    expect(report.totals.impressions).toBeGreaterThan(0);
  }, 120_000);

  it('refuses an unknown feedback mode with exit 2', () => {
    const run = cli('simulate', '--requests', '2000', '--ctr', 'oracle', '--feedback', 'nope', '--json');
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/^bidder: --feedback: /);
  });
});
