import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `serve` refused at start says every problem in one message, exit 2 (docs/operations.md), each
 * blamed on where it is: a bidder.yaml that cannot be parsed hid the model's problems until the
 * next run, and a flag's or the environment's value was blamed on bidder.yaml.
 */
let dir: string;
let policies: string;
let models: string;
const served = readFileSync('models/CURRENT', 'utf8').replace(/^\uFEFF/, '').trim();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'serve-start-problems-'));
  policies = join(dir, 'policies');
  models = join(dir, 'models');
  cpSync('policies', policies, { recursive: true });
  cpSync(join('models', served), join(models, served), { recursive: true });
  writeFileSync(join(models, 'CURRENT'), `${served}\n`);
  // The served version's model.json cut short.
  truncateSync(join(models, served, 'model.json'), 100);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `bidder serve` with `args`, refused before it listens (or killed after 30 s). */
function serve(args: string[], env: Record<string, string> = {}) {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const k of ['PORT', 'REDIS_URL', 'LOG_LEVEL', 'NOTICE_SECRET', 'NOTICE_SECRET_PREVIOUS', 'ADMIN_TOKEN']) if (!(k in env)) delete e[k];
  return spawnSync(process.execPath, ['dist/cli.js', 'serve', '--log-level', 'silent', ...args], { encoding: 'utf8', timeout: 30_000, env: e });
}

describe('a bidder.yaml that cannot be parsed', () => {
  it('with --models: the model\'s problems are in the same message', () => {
    const shipped = readFileSync(join(policies, 'bidder.yaml'), 'utf8');
    writeFileSync(join(policies, 'bidder.yaml'), 'batcher: [1\n');
    try {
      const run = serve(['--port', '0', '--policies', policies, '--models', models]);
      expect(run.status, run.stderr).toBe(2);
      expect(run.stderr).toContain('bidder.yaml: cannot parse:');
      expect(run.stderr).toMatch(/cannot load model from .*model\.json is not valid JSON/s);
    } finally {
      writeFileSync(join(policies, 'bidder.yaml'), shipped);
    }
  });
});

describe('a value of a flag or of the environment', () => {
  it('PORT=abc is named as such, not blamed on bidder.yaml', () => {
    const run = serve(['--policies', policies], { PORT: 'abc' });
    expect(run.status, run.stderr).toBe(2);
    expect(run.stderr).toContain('PORT=abc: /port must be integer');
    expect(run.stderr).not.toContain('bidder.yaml (with flags and environment): /port');
  });

  it('--port 70000 is named as such', () => {
    const run = serve(['--policies', policies, '--port', '70000']);
    expect(run.status, run.stderr).toBe(2);
    expect(run.stderr).toContain('--port 70000: /port must be <= 65535');
  });

  it('a secret of the environment is named without its value', () => {
    const run = serve(['--policies', policies, '--port', '0'], { ADMIN_TOKEN: 'short-token' });
    expect(run.status, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/ADMIN_TOKEN \(environment\)[: ]/);
    expect(run.stderr).not.toContain('short-token');
  });

  it('a Redis URL that is not one is quoted without its credentials', () => {
    const run = serve(['--policies', policies, '--port', '0'], { REDIS_URL: 'http://bidder:s3cr@t-pw@redis.example:6379' });
    expect(run.status, run.stderr).toBe(2);
    expect(run.stderr).toContain('"http://redis.example:6379" is not a redis:// or rediss:// (TLS) URL with a host');
    expect(run.stderr).not.toContain('s3cr');
    expect(run.stderr).not.toContain('t-pw');
  });

  it('a problem of bidder.yaml\'s own value keeps its name', () => {
    const shipped = readFileSync(join(policies, 'bidder.yaml'), 'utf8');
    writeFileSync(join(policies, 'bidder.yaml'), shipped.replace(/^port: \d+$/m, 'port: 70000'));
    try {
      const run = serve(['--policies', policies]);
      expect(run.status, run.stderr).toBe(2);
      expect(run.stderr).toContain('bidder.yaml (with flags and environment): /port must be <= 65535');
    } finally {
      writeFileSync(join(policies, 'bidder.yaml'), shipped);
    }
  });
});
