import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { parseIpinyou } from '../src/replay/ipinyou.js';

/** A tiny iPinYou-style log in the real files' form: a `<number> <T>` header, episodes of T = 4 auctions. */
const episode = (n: number) => `${n}\n0\t50\t0.02\n1\t40\t0.03\n0\t90\t0.01\n1\t20\t0.04\n`;
const full = `5000\t4\n${episode(1)}${episode(2)}${episode(3)}`;
const info = 'CPC:\t1000\nCPM:\t50000\navg ctr:\t0.02\ncounter:\t0_1_2_3\n';

let dir: string;
beforeAll(() => {
  if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
  dir = mkdtempSync(join(tmpdir(), 'replay-cli-'));
  writeFileSync(join(dir, 'c1.validation.txt'), full);
  writeFileSync(join(dir, 'c1.train-info.txt'), info);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const replay = (...args: string[]) => spawnSync(process.execPath, ['dist/cli.js', 'replay', ...args], { encoding: 'utf8', timeout: 60_000 });

/** One line on stderr, exit 2, nothing on stdout. */
function refused(run: ReturnType<typeof replay>, message: RegExp): void {
  expect(run.status, run.stderr).toBe(2);
  expect(run.stderr).toMatch(message);
  expect(run.stderr.trim().split('\n')).toHaveLength(1);
  expect(run.stdout).toBe('');
}

describe('replay reads the header\'s T', () => {
  it('keeps T and refuses an episode of another length or none, naming it; only the last may be short', () => {
    expect(parseIpinyou(full).auctionsPerEpisode).toBe(4);
    expect(parseIpinyou(full).shortLast).toBeUndefined();
    // The auctions left over as a short last episode, as the RLB repository's make_validation.py
    // writes them (its 2997.test.txt ends with 63 of 1000); a log cut there reads the same.
    const short = parseIpinyou(full.split('\n').slice(0, 14).join('\n'));
    expect(short.episodes.map((e) => e.price.length)).toEqual([4, 4, 2]);
    expect(short.shortLast).toEqual({ where: 'episode 3 (line 12)', auctions: 2 });
    // A short episode before the last, or a long one: cut or corrupt.
    expect(() => parseIpinyou(`5000\t4\n${episode(1)}2\n0 1 0.1\n${episode(3)}`)).toThrow(/^episode 2 \(line 7\) has 1 auction, the header \(line 1\) gives 4 per episode/);
    expect(() => parseIpinyou(`${full}4\n0 1 0.1\n5\n0 1 0.1\n`)).toThrow(/^episode 4 \(line 17\) has 1 auction, the header/);
    expect(() => parseIpinyou(`${full}4\n${'0 1 0.1\n'.repeat(5)}`)).toThrow(/^episode 4 \(line 17\) has 5 auctions, the header/);
    // A torn last line: an episode marker with no auctions.
    expect(() => parseIpinyou(`${full}0\n`)).toThrow(/^episode 0 \(line 17\) has no auctions/);
    expect(() => parseIpinyou('5000 0\n1\n0 1 0.1\n')).toThrow(/line 1/);
  });

  it('without a header giving T (simulate --ipinyou writes `dim 1`), a short last episode is read', () => {
    const l = parseIpinyou('dim 1\n1\n0 50 0.01\n1 80 0.2\n2\n0 30 0.05\n');
    expect(l.episodes.map((e) => e.price.length)).toEqual([2, 1]);
    expect(l.auctionsPerEpisode).toBeUndefined();
  });

  it('the CLI refuses a log cut before its last episode with one line and exit 2, and replays a short last one, saying so', () => {
    const cut = join(dir, 'cut.validation.txt');
    writeFileSync(cut, `5000\t4\n${episode(1)}2\n0 1 0.1\n${episode(3)}`);
    refused(replay(cut, '--budget-per-episode', '0.05', '--json'), /^bidder: .*cut\.validation\.txt: episode 2 \(line 7\) has 1 auction/);
    const last = join(dir, 'last.validation.txt');
    writeFileSync(last, full.split('\n').slice(0, 14).join('\n'));
    const run = replay(last, '--budget-per-episode', '0.05', '--json');
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/last\.validation\.txt: the last episode, episode 3 \(line 12\), has 2 of the header's 4 auctions/);
    expect(JSON.parse(run.stdout).pacer.episodes).toBe(3);
  });
});

describe('replay budgets', () => {
  it('refuses a budget that is no finite positive fraction, before any work', () => {
    for (const c0 of ['1/0', '0/0', '0']) refused(replay(join(dir, 'c1.validation.txt'), '--c0', c0, '--json'), /^bidder: c0 must be a positive fraction such as 1\/32/);
  });

  it('--all summarises even one run, and refuses a budget given twice', () => {
    const one = replay(join(dir, 'c1.validation.txt'), '--all', '1/32', '--json');
    expect(one.status, one.stderr).toBe(0);
    const out = JSON.parse(one.stdout);
    expect(Object.keys(out.runs)).toEqual(['1/32']);
    expect(Object.keys(out.runs['1/32'].campaigns)).toEqual(['c1']);
    refused(replay(join(dir, 'c1.validation.txt'), '--all', '1/32,1/16,0.03125', '--json'), /^bidder: --all gives the budget 0\.03125 twice \(1\/32, 0\.03125\)/);
    refused(replay(join(dir, 'c1.validation.txt'), join(dir, 'c1.validation.txt'), '--all', '1/32', '--json'), /^bidder: campaign c1 given twice/);
  });
});

describe('replay quotes a bad line briefly', () => {
  it('refuses a price that is not finite (Infinity, 1e999)', () => {
    for (const p of ['Infinity', '1e999']) {
      expect(() => parseIpinyou(`dim 1\n1\n0 ${p} 0.01\n`)).toThrow(`line 3: expected 'click marketPrice pctr' (click 0/1, a finite price >= 0, 0 <= pctr <= 1), got "0 ${p} 0.01"`);
    }
  });

  it('quotes at most 80 characters of a line, JSON-escaped, with … where cut', () => {
    const long = '0 1 '.repeat(240_000);
    expect(() => parseIpinyou(`dim 1\n1\n${long}\n`)).toThrow(`line 3: expected 'click marketPrice pctr' (click 0/1, a finite price >= 0, 0 <= pctr <= 1), got ${JSON.stringify(long.slice(0, 80))}…`);
    expect(() => parseIpinyou(`${'x'.repeat(960_000)}\n`)).toThrow(`line 1: expected an episode number, got ${JSON.stringify('x'.repeat(80))}…`);
    expect(() => parseIpinyou('\u001f\u008b\b\b\n')).toThrow('line 1: expected an episode number, got "\\u001f\u008b\\b\\b"');
  });

  it('the CLI says so in one short line for a 960 KB one-line file and for a gzipped one', () => {
    const one = join(dir, 'one.validation.txt');
    writeFileSync(one, `${'x'.repeat(960_000)}\n`);
    const run = replay(one, '--c0', '1/32', '--json');
    refused(run, /line 1: expected an episode number, got "x{80}"…$/m);
    expect(run.stderr.length).toBeLessThan(400);
    const gz = join(dir, 'gz.validation.txt.gz');
    writeFileSync(gz, gzipSync(full));
    const bin = replay(gz, '--c0', '1/32', '--json');
    expect(bin.status, bin.stderr).toBe(2);
    expect(bin.stderr.trim().split('\n')).toHaveLength(1);
    expect(bin.stderr.length).toBeLessThan(600);
    // Control bytes escaped, none raw on the terminal.
    expect(bin.stderr.trim()).not.toMatch(/[\u0000-\u0008\u000e-\u001f]/);
  });
});
