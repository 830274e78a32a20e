import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { tool } from './dashboard.tools.js';

/** promtool checks the alert rules and runs their unit tests (grafana/alerts.test.yml). */
const promtool = tool('promtool');

function run(args: string[]): { ok: boolean; out: string } {
  try {
    return { ok: true, out: execFileSync(promtool.path!, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe.skipIf(promtool.skip)('alert rules under promtool', () => {
  it('pass promtool check rules', () => {
    if (!promtool.path) throw new Error(promtool.missing);
    const r = run(['check', 'rules', 'grafana/alerts.yml']);
    expect(r.ok, r.out).toBe(true);
  });

  it('pass their unit tests (promtool test rules)', () => {
    if (!promtool.path) throw new Error(promtool.missing);
    const r = run(['test', 'rules', 'grafana/alerts.test.yml']);
    expect(r.ok, r.out).toBe(true);
  });

  it('accept the shipped Prometheus config (promtool check config)', () => {
    if (!promtool.path) throw new Error(promtool.missing);
    const r = run(['check', 'config', 'grafana/prometheus.yml']);
    expect(r.ok, r.out).toBe(true);
  });
});
