import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder } from './helpers/bidder.js';

/**
 * A reload may move a currency rate by at most 25 % unless currency.yaml confirms it
 * (currency-reload-guard.test.ts); a restart is how most changes are deployed, and it took any
 * rate: EUR 0.92 → 92 typed in currency.yaml and a restart bid 100 × more in EUR and recorded each
 * bill ÷ 100. A start is checked against the last run's rates, kept beside the journal.
 */
const SHIPPED = readFileSync('policies/currency.yaml', 'utf8');

describe('a start that moves a currency rate from the last run', () => {
  let dir: string;
  let journal: string;
  let policies: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'currency-start-'));
    policies = join(dir, 'policies');
    journal = join(dir, 'ledger');
    cpSync('policies', policies, { recursive: true });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const start = async () => {
    const t = await startBidder({ ledger: { journalPath: journal, redisUrl: '' } as never }, policies);
    await t.close();
  };
  const currency = (eur: string, extra = '') => writeFileSync(join(policies, 'currency.yaml'), SHIPPED.replace('EUR: 0.92', `EUR: ${eur}`) + extra);
  /** `bidder serve` on the policies, its journal in `journal`, refused before it listens (or killed after 20 s). */
  const serve = (bidderYaml = '') => {
    const shipped = readFileSync(join(policies, 'bidder.yaml'), 'utf8');
    writeFileSync(join(policies, 'bidder.yaml'), `port: 0\nhost: 127.0.0.1\neventLog:\n  dir: ${join(dir, 'events')}\nledger:\n  journalPath: ${journal}\n${bidderYaml}`);
    try {
      return spawnSync(process.execPath, ['dist/cli.js', 'serve', '--policies', policies, '--log-level', 'silent'], { encoding: 'utf8', timeout: 20_000 });
    } finally {
      writeFileSync(join(policies, 'bidder.yaml'), shipped);
    }
  };

  it('the first start keeps its rates; a restart on EUR × 100 is refused (exit 2) with the move named', async () => {
    await start();
    expect(JSON.parse(readFileSync(join(journal, 'rates.json'), 'utf8')).ratesPerUsd).toMatchObject({ EUR: 0.92, GBP: 0.79 });
    currency('92');
    const run = serve();
    expect(run.status, run.stderr).toBe(2);
    expect(run.stderr).toContain('currency.yaml: EUR 0.92 → 92 (× 100): more than the 25 % a rate may move at a start from the last run');
    expect(run.stderr).toContain('confirmChanges: { EUR: 92 }');
    // In-process too (createBidder: tests, embedders), with nothing written.
    await expect(start()).rejects.toThrow(/EUR 0\.92 → 92 \(× 100\)/);
    expect(JSON.parse(readFileSync(join(journal, 'rates.json'), 'utf8')).ratesPerUsd.EUR).toBe(0.92);
  });

  it('listed with the start\'s other problems, in one message', () => {
    const run = serve('defaultTmaxMs: -5\n');
    expect(run.status, run.stderr).toBe(2);
    expect(run.stderr).toContain('defaultTmaxMs');
    expect(run.stderr).toContain('EUR 0.92 → 92 (× 100)');
  });

  it('confirmed, it starts and becomes the rate the next start is checked against; within 25 % needs nothing', async () => {
    currency('92', 'confirmChanges: { EUR: 92 }\n');
    await start();
    expect(JSON.parse(readFileSync(join(journal, 'rates.json'), 'utf8')).ratesPerUsd.EUR).toBe(92);
    currency('100');
    await start();
    expect(JSON.parse(readFileSync(join(journal, 'rates.json'), 'utf8')).ratesPerUsd.EUR).toBe(100);
    // The confirmation of 92 left in the file is inert at 1: refused again.
    currency('1', 'confirmChanges: { EUR: 92 }\n');
    await expect(start()).rejects.toThrow(/EUR 100 → 1 \(× 0\.01\)/);
  });

  it('a start that fails after the check keeps nothing: no ratchet of 25 % per failed start', async () => {
    currency('100');
    const running = await startBidder({ ledger: { journalPath: journal, redisUrl: '' } as never }, policies);
    try {
      // Within 25 % of 100, and a start that fails: the journal is this running bidder's.
      currency('124');
      await expect(start()).rejects.toThrow();
      expect(JSON.parse(readFileSync(join(journal, 'rates.json'), 'utf8')).ratesPerUsd.EUR).toBe(100);
    } finally {
      await running.bidder.close();
    }
    // 124 × 1.24 is within 25 % of what the failed start would have kept, not of what ran.
    currency('153.76');
    await expect(start()).rejects.toThrow(/EUR 100 → 153\.76 \(× 1\.54\)/);
  });

  it('a damaged rates file stops the start with what to do', async () => {
    currency('100');
    writeFileSync(join(journal, 'rates.json'), '{"ratesPerUsd": {"EUR": "x"}}');
    await expect(start()).rejects.toThrow(/rates\.json, has no "ratesPerUsd" map of positive numbers: fix it, or remove it/);
    rmSync(join(journal, 'rates.json'));
    await start();
    expect(existsSync(join(journal, 'rates.json'))).toBe(true);
  });
});
