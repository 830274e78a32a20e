import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Logger } from 'pino';
import { PolicyError } from '../src/config/policies.js';
import type { Settings } from '../src/config/settings.js';
import { createMemoryLedger, type LedgerLogger } from '../src/ledger/index.js';
import { foldAndWriteSnapshot, SNAPSHOT } from '../src/ledger/compact.js';
import { encodeRecord, type JournalRecord } from '../src/ledger/journal.js';
import { MOVED } from '../src/ledger/move.js';
import { openLedger } from '../src/ledger/open.js';
import { LedgerCore } from '../src/ledger/state.js';
import type { Budget } from '../src/types.js';
import { connectRedis, describeWithRedis, dropKeysAndQuit, REDIS_URL } from './helpers/redis.js';

/**
 * A journal record of a type this version does not read (written by a later version: a rollback
 * across a journal format change). Before, replay skipped it with no word: the start went on
 * without the money it recorded (an upgrade review: a 500 USD settlement of type "y" vanished from
 * the spend; a build without the `c` record read a billing correction as nothing, 0.003 spent where
 * the exchange billed 0.002). Now a start on it is refused (PolicyError, exit 2) with one line naming
 * the file and the type, and neither compaction nor the carry into Redis goes past it.
 */

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-unknown-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => {
  const d = path.join(root, `j${dirs++}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
};

const T0 = Date.UTC(2026, 0, 10, 12);
const DAY = Math.floor(T0 / 86_400_000);
const budgets: Record<string, Budget> = { 'acme-shoes': { dailyUsd: 1000 } };
const silent = (): LedgerLogger & { warnings: string[] } => {
  const warnings: string[] = [];
  return { warnings, warn: (_o, msg) => warnings.push(msg) };
};

/** A record of a type no version of this one knows, with a valid checksum (as journal.ts writes one). */
const future = (t = 'y'): string => encodeRecord({ t, b: 'future-1', c: 'acme-shoes', d: DAY, p: 500_000_000, at: T0 } as unknown as JournalRecord);

/** A journal generation: a 1 USD settlement, then `extra` (a later version's record). */
function journalWith(dir: string, extra: string, g = 1): string {
  const file = path.join(dir, `journal.${g}`);
  fs.writeFileSync(
    file,
    encodeRecord({ t: 'r', b: 'known-1', c: 'acme-shoes', a: 1_000_000, e: T0 + 60_000, d: DAY }) +
      encodeRecord({ t: 's', b: 'known-1', c: 'acme-shoes', d: DAY, p: 1_000_000, at: T0 }) +
      extra,
  );
  return file;
}

const expectedLine = (file: string, what: 'journal' | 'snapshot', t = 'y') =>
  `ledger ${what} ${file} holds a record this version does not read (type "${t}", written by a later version): start that version again`;

const open = (dir: string, logger: LedgerLogger = silent()) => createMemoryLedger({ clock: () => T0, budgets, reservationTtlMs: 60_000, journalDir: dir, logger });

describe('ledger journal: a record of a type this version does not read', () => {
  it('LedgerCore.apply refuses it instead of skipping it (the replay of every reader goes through apply)', () => {
    const core = new LedgerCore(120_000);
    expect(() => core.apply(JSON.parse(future().slice(9)) as JournalRecord)).toThrow(/type "y"/);
    // The records it knows still apply.
    core.apply({ t: 's', b: 'k', c: 'acme-shoes', d: DAY, p: 2_000_000, at: T0 });
    expect(core.accounts.get('acme-shoes')?.spent).toBe(2_000_000);
  });

  it('a start on a journal holding one is refused, naming the file and the type; the journal is left as it was', async () => {
    const dir = freshDir();
    const file = journalWith(dir, future());
    const before = fs.readFileSync(file);
    // Before: the start went on, 1 USD spent instead of 501.
    const err = await open(dir).then(
      async (l) => {
        const s = await l.state('acme-shoes');
        await l.close();
        return new Error(`started, spent ${s.spentUsd}`);
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).problems).toEqual([expectedLine(file, 'journal')]);
    // Nothing written, cut or started: the version that wrote it reads the same journal.
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('journal.'))).toEqual(['journal.1']);
    // The lock was let go: a second try is refused the same way, not as "in use".
    await expect(open(dir)).rejects.toThrow(expectedLine(file, 'journal'));
  });

  it('one after a damaged line or in a later generation is refused too; the records it knows alone start as before', async () => {
    const dir = freshDir();
    journalWith(dir, 'deadbeef {"t":"s"}\n');
    const file2 = path.join(dir, 'journal.2');
    fs.writeFileSync(file2, future('w2'));
    await expect(open(dir)).rejects.toThrow(expectedLine(file2, 'journal', 'w2'));
    fs.rmSync(file2);
    const l = await open(dir);
    expect((await l.state('acme-shoes')).spentUsd).toBe(1);
    await l.close();
  });

  it('a refusal in a later generation leaves the earlier ones as they were, a torn tail uncut (review fixrevj)', async () => {
    const dir = freshDir();
    const file1 = journalWith(dir, encodeRecord({ t: 's', b: 'known-2', c: 'acme-shoes', d: DAY, p: 1, at: T0 }).slice(0, 20));
    const before = fs.readFileSync(file1);
    const file2 = path.join(dir, 'journal.2');
    fs.writeFileSync(file2, future());
    await expect(open(dir)).rejects.toThrow(expectedLine(file2, 'journal'));
    // Before: journal.1's torn tail was cut before journal.2 refused.
    expect(fs.readFileSync(file1).equals(before)).toBe(true);
  });

  it('a snapshot holding one is refused as well', async () => {
    const dir = freshDir();
    const file = path.join(dir, SNAPSHOT);
    fs.writeFileSync(file, encodeRecord({ t: 'h', g: 1 }) + encodeRecord({ t: 'a', c: 'acme-shoes', d: DAY, s: 1_000_000 }) + future('v') + encodeRecord({ t: 'z', n: 4 }));
    await expect(open(dir)).rejects.toThrow(expectedLine(file, 'snapshot', 'v'));
  });

  it('compaction never folds one away: it fails, and the journal and the old snapshot stay', async () => {
    // A start refuses such a journal, so a running ledger never compacts one; were it given one
    // all the same, the snapshot written without the record would lose it for good once the
    // journal was unlinked.
    const dir = freshDir();
    const file = journalWith(dir, future());
    const before = fs.readFileSync(file);
    const logger = silent();
    await expect(foldAndWriteSnapshot({ dir, upTo: 1, snapshotGeneration: 0, now: T0, retentionMs: 120_000 }, logger)).rejects.toThrow(expectedLine(file, 'journal'));
    expect(fs.existsSync(path.join(dir, SNAPSHOT))).toBe(false);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });
});

const db = new URL(REDIS_URL);
db.pathname = '/14';
const url = db.toString();
const prefix = `test:unknown-record:${process.pid}:${Date.now().toString(36)}:`;
const client = await connectRedis(url);

describeWithRedis('ledger journal: a record of a type this version does not read, carried into Redis', url, client, (redis) => {
  afterAll(() => dropKeysAndQuit(redis, prefix));

  it('a start with Redis on such a journal is refused before anything is carried or marked moved', async () => {
    const dir = freshDir();
    const file = journalWith(dir, future());
    const logger = { warn: () => {}, info: () => {} } as unknown as Logger;
    const settings = { noticeTtlMs: 60_000, ledger: { journalPath: dir, redisUrl: url, keyPrefix: prefix, syncWindowMs: 0 } } as Settings;
    const err = await openLedger({ settings, redis: redis, clock: () => T0, serverClock: false, budgets, logger, workers: 1 }).then(
      async (l) => {
        await l.close();
        return new Error('started');
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).problems).toEqual([expectedLine(file, 'journal')]);
    // Not marked: the later version still starts on the folder without Redis.
    expect(fs.existsSync(path.join(dir, MOVED))).toBe(false);
    expect(await redis.keys(`${prefix}*`)).toEqual([]);
  });

  it("a refusal keeps a mark another process recorded its carry in meanwhile (two starts at once; review fixrevj)", async () => {
    const dir = freshDir();
    // journal.1 read first (its damaged line said), then journal.2 refuses: between the two, the
    // other process (a later version, another key prefix) records its carry in the mark this start made.
    journalWith(dir, 'deadbeef {"t":"s"}\n');
    const file2 = path.join(dir, 'journal.2');
    fs.writeFileSync(file2, future());
    const mark = path.join(dir, MOVED);
    const logger = {
      info: () => {},
      warn: () => {
        const m = JSON.parse(fs.readFileSync(mark, 'utf8')) as { carried: Record<string, string> };
        m.carried['other:'] = new Date(T0).toISOString();
        fs.writeFileSync(mark, JSON.stringify(m));
      },
    } as unknown as Logger;
    const settings = { noticeTtlMs: 60_000, ledger: { journalPath: dir, redisUrl: url, keyPrefix: prefix, syncWindowMs: 0 } } as Settings;
    await expect(openLedger({ settings, redis: redis, clock: () => T0, serverClock: false, budgets, logger, workers: 1 })).rejects.toThrow(expectedLine(file2, 'journal'));
    // Before: the mark went, and a start without Redis took a journal whose money was in Redis.
    expect(JSON.parse(fs.readFileSync(mark, 'utf8')).carried).toHaveProperty('other:');
  });
});

describe('bidder serve on a journal holding a record this version does not read', () => {
  it('exits 2 with the one line, no stack trace', () => {
    if (!fs.existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
    const policies = path.join(root, 'policies');
    fs.cpSync('policies', policies, { recursive: true });
    const ledgerDir = path.join(root, 'serve-ledger');
    fs.mkdirSync(ledgerDir);
    const bidderYaml = path.join(policies, 'bidder.yaml');
    fs.writeFileSync(
      bidderYaml,
      fs
        .readFileSync(bidderYaml, 'utf8')
        .replace('dir: var/events', `dir: ${path.join(root, 'events')}`)
        .replace(/journalPath: .*/, `journalPath: ${ledgerDir}`),
    );
    const file = journalWith(ledgerDir, future());
    const run = spawnSync(process.execPath, ['dist/cli.js', 'serve', '--policies', policies, '--port', '0', '--host', '127.0.0.1', '--log-level', 'silent'], {
      encoding: 'utf8',
      timeout: 60_000,
      killSignal: 'SIGKILL',
      env: { ...process.env, REDIS_URL: '', PORT: '' },
    });
    expect(run.stderr).not.toMatch(/^\s+at /m);
    expect(run.stderr).toBe(`bidder: invalid policies (1 problem):\n  - ${expectedLine(file, 'journal')}\n`);
    expect(run.status).toBe(2);
  }, 90_000);
});
