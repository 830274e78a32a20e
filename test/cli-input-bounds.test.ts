import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';

/**
 * Flags whose values the commands took without a bound or a check, and failed on late, with a
 * stack trace, or not at all: `simulate --requests 1e15` (RangeError from a typed array),
 * `simulate --target notaurl` (exit 0, every request an error), `catalog --seed 1e21` (ids serve
 * refuses), `train --validation 2` ("not enough data" after simulating). Each is refused at parse
 * in one line, exit 2, nothing on stdout.
 */
if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
const cli = (...args: string[]) => spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8', timeout: 120_000 });
const cliAsync = (...args: string[]) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8', timeout: 120_000 }, (_err, stdout, stderr) => resolve({ status: child.exitCode, stdout, stderr }));
  });
const said = (stderr: string) => stderr.split('\n').filter((l) => l !== '');

function refused(run: { status: number | null; stdout: string; stderr: string }, line: string | RegExp): void {
  expect(run.status, run.stderr).toBe(2);
  expect(run.stdout).toBe('');
  const lines = said(run.stderr);
  expect(lines, run.stderr).toHaveLength(1);
  if (typeof line === 'string') expect(lines[0]).toBe(line);
  else expect(lines[0]).toMatch(line);
}

describe('simulate --requests', () => {
  it('refuses more than 100,000,000 requests at parse, whatever else is asked', () => {
    for (const n of ['1e15', '100000001']) {
      refused(cli('simulate', '--requests', n, '--limit', '2'), `bidder: --requests must be at most 100000000, got '${n}'`);
    }
    refused(cli('simulate', '--requests', '1e9', '--json'), "bidder: --requests must be at most 100000000, got '1e9'");
  });

  it('takes the maximum itself, and streams from it', () => {
    const run = cli('simulate', '--requests', '100000000', '--limit', '2');
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.trim().split('\n')).toHaveLength(2);
  });

  it('writes about the count asked: each hour rounded on its own', () => {
    expect(cli('simulate', '--requests', '10').stdout.trim().split('\n')).toHaveLength(9);
    expect(cli('simulate', '--requests', '100').stdout.trim().split('\n')).toHaveLength(101);
  });

  it('says in --help that the count is approximate and what the maximum is', () => {
    const help = cli('simulate', '--help').stdout.replace(/\s+/g, ' ');
    expect(help).toMatch(/--requests <n> requests in the day, approximately: each hour's share is rounded on its own \(the default gives 100004, 10 gives 9\); at most 100000000/);
  });
});

describe('simulate --target', () => {
  it('refuses what is not an http(s) URL at parse', () => {
    // Each spawn loads the whole CLI (~1.5 s): one case per kind of mistake.
    for (const t of ['notaurl', 'ftp://127.0.0.1/']) {
      refused(cli('simulate', '--requests', '100', '--target', t), `bidder: --target must be an http:// or https:// URL, got '${t}'`);
    }
    // The pacing evaluation's own target, the same rule.
    refused(cli('simulate', '--json', '--http', 'notaurl'), "bidder: --http must be an http:// or https:// URL, got 'notaurl'");
  });

  it('exits 1 with one line when no request reached the bidder', async () => {
    // A port nothing listens on: taken, then given back.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const run = await cliAsync('simulate', '--requests', '100', '--limit', '20', '--target', `http://127.0.0.1:${port}`);
    expect(run.status, run.stderr).toBe(1);
    expect(said(run.stderr)).toEqual([`bidder: --target http://127.0.0.1:${port}: all 20 requests failed to connect (no HTTP answer); is a bidder listening there?`]);
    // The report still goes to stdout, for whoever reads it.
    expect(JSON.parse(run.stdout)).toMatchObject({ requests: 20, errors: 20 });
  });
});

describe('train --validation', () => {
  it('refuses a share outside (0, 0.5) at parse', () => {
    for (const v of ['0.5', '0']) {
      refused(cli('train', '--rows', '2000', '--validation', v), `bidder: --validation must be a share above 0 and under 0.5 (it is held out twice), got '${v}'`);
    }
  });

  it("says the range in its help", () => {
    expect(cli('train', '--help').stdout.replace(/\s+/g, ' ')).toMatch(/--validation <fraction> share of the rows, above 0 and under 0\.5,/);
  });
});

describe('catalog --seed', () => {
  it('refuses what is not an integer from 0 to 4294967295', () => {
    for (const s of ['1e21', '', '4294967296', '1.5']) {
      refused(cli('catalog', '--campaigns', '2', '--seed', s), `bidder: --seed must be an integer from 0 to 4294967295, got '${s}'`);
    }
  });

  it('takes both ends of the range', () => {
    for (const s of ['0', '4294967295']) {
      const run = cli('catalog', '--campaigns', '2', '--seed', s);
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout).toContain(`id: "g${s}-c0"`);
    }
  });
});

describe("a flag commander refuses (an option's parser, an unknown option, an extra argument)", () => {
  it('says so in its line and one pointer to --help, exit 2, not the whole usage and exit 1', () => {
    for (const args of [['simulate', '--limit', '0'], ['nosuchcommand']]) {
      const run = cli(...args);
      expect(run.status, run.stderr).toBe(2);
      expect(run.stdout).toBe('');
      expect(said(run.stderr), run.stderr).toEqual([expect.stringMatching(/^error: /), '(add --help for the options)']);
    }
  });

  it('help asked for is printed on stdout and exits 0', () => {
    for (const args of [['simulate', '--help']]) {
      const run = cli(...args);
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^Usage: bidder/);
    }
  });
});
