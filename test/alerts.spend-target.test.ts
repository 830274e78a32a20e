import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createValuePacer, mulberry32 } from '../src/pace/index.js';
import { tool } from './dashboard.tools.js';

/**
 * The pacing alerts on the target the value pacer exports, minute by minute, for a campaign
 * dayparted 03-10 UTC on its first day that spends its budget as planned: on an even 24-hour
 * target, BidderPacingOffTrack fired at 9h and BidderBudgetExhaustedEarly at 12h and 17h.
 */
const promtool = tool('promtool');
const scratch = mkdtempSync(join(tmpdir(), 'alerts-target-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const MINUTE = 60_000;
const BUDGET = 100;

describe.skipIf(promtool.skip)('the pacing alerts on the value pacer’s first-day target', () => {
  it('stay quiet for a dayparted campaign spending as planned', () => {
    if (!promtool.path) throw new Error(promtool.missing);
    // Evaluation starts at 1970-01-01T00:00Z: the pacer's day is that one.
    let now = 0;
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'dp', budget: { dailyUsd: BUDGET }, targeting: { hours: [3, 4, 5, 6, 7, 8, 9, 10] } }] });
    const target: string[] = [];
    const spent: string[] = [];
    const left: string[] = [];
    for (let m = 0; m < 1440; m++) {
      now = m * MINUTE;
      target.push(pacer.inspect('dp', now)!.targetSpentUsd.toFixed(4));
      // Spread evenly over its eight hours.
      const s = BUDGET * Math.min(1, Math.max(0, (m - 180) / 480));
      spent.push(s.toFixed(4));
      left.push((BUDGET - s).toFixed(4));
    }
    const file = join(scratch, 'daypart.test.yml');
    writeFileSync(
      file,
      [
        `rule_files: [${JSON.stringify(resolve('grafana/alerts.yml'))}]`,
        'evaluation_interval: 1m',
        'tests:',
        '  - interval: 1m',
        '    input_series:',
        `      - { series: 'bidder_requests_total{instance="b1", exchange="default", outcome="bid"}', values: '0+120x1439' }`,
        `      - { series: 'bidder_spend_target_usd{instance="b1", campaign="dp"}', values: '${target.join(' ')}' }`,
        `      - { series: 'bidder_spent_today_usd{instance="b1", campaign="dp"}', values: '${spent.join(' ')}' }`,
        `      - { series: 'bidder_budget_remaining_usd{instance="b1", campaign="dp"}', values: '${left.join(' ')}' }`,
        '    alert_rule_test:',
        ...['3h30m', '6h', '9h', '12h', '17h', '21h'].flatMap((t) => [
          `      - { eval_time: ${t}, alertname: BidderPacingOffTrack, exp_alerts: [] }`,
          `      - { eval_time: ${t}, alertname: BidderBudgetExhaustedEarly, exp_alerts: [] }`,
        ]),
        '',
      ].join('\n'),
    );
    let out = '';
    let ok = true;
    try {
      execFileSync(promtool.path, ['test', 'rules', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      ok = false;
      out = `${e.stdout ?? ''}${e.stderr ?? ''}`;
    }
    expect(ok, out).toBe(true);
  });
});
