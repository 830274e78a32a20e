import { spawnSync, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

describe('--backend webgpu where WebGPU is not available', () => {
  it('refuses to start with one line naming what is missing, no stack trace', () => {
    if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
    const run = spawnSync(process.execPath, ['dist/cli.js', 'serve', '--backend', 'webgpu', '--port', '0', '--log-level', 'silent'], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status).not.toBe(0);
    expect(run.status).not.toBeNull();
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^bidder: cannot start: backend 'webgpu' is not available: .*(webgpu|WebGPU)/);
  });
});
