import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryLedger, UnconfirmedSettlement, type LedgerLogger, type MemoryLedger } from '../src/ledger/index.js';
import type { Budget, Settled } from '../src/types.js';
import { encodeRecord, encodeReserve, openJournalWriter } from '../src/ledger/journal.js';
import { runLedgerSuite } from './ledger.suite.js';
import { failNextFdatasync } from './helpers/faults.js';
import { syncBuiltinESMExports } from 'node:module';
import nodeFs from 'node:fs';
import { transpileLedger } from './helpers/transpile.js';
import { pausedFile, retiredFile } from '../src/live/live.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-journal-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => path.join(root, `j${dirs++}`);

runLedgerSuite(
  'in-process with journal',
  () => {
    const dir = freshDir();
    return (o) => createMemoryLedger({ ...o, journalDir: dir, logger: capture() });
  },
  { propertyRuns: 60, durable: true, forgetsAfterMs: 20_000 },
);

const T0 = Date.UTC(2026, 0, 10, 12);
const budgets: Record<string, Budget> = { c1: { dailyUsd: 10 }, c2: { dailyUsd: 5, lifetimeUsd: 7 } };

function capture(): LedgerLogger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, warn: (_o, msg) => warnings.push(msg) };
}

async function reopen(dir: string, now = T0, logger: LedgerLogger = capture()): Promise<MemoryLedger> {
  return createMemoryLedger({ clock: () => now, budgets, reservationTtlMs: 60_000, journalDir: dir, logger });
}

const item = (bidId: string, campaignId: string, amountUsd: number) => ({
  bidId,
  campaignId,
  amountUsd,
  expiresAtMs: T0 + 60_000,
});

describe('in-process ledger journal', () => {
  it('a held bid of a campaign the policies dropped before a restart settles as spend, as on Redis: a removed campaign is no lowered budget', async () => {
    const dir = freshDir();
    const a = await reopen(dir);
    await a.reserve([item('gone1', 'c1', 1)]);
    await a.close();
    const b = await createMemoryLedger({ clock: () => T0, budgets: { c2: budgets.c2 }, reservationTtlMs: 60_000, journalDir: dir, logger: capture() });
    // Before: recorded as overspend (no rule, no room), and BidderOverspend fired for it.
    expect(await b.settle('gone1', 0.5)).toBe('settled');
    expect(await b.state('c1')).toMatchObject({ spentUsd: 0.5, overspentUsd: 0 });
    await b.close();
  });

  it('restores settled spend, open reservations and idempotency after a restart', async () => {
    const dir = freshDir();
    const a = await reopen(dir);
    await a.reserve([item('b1', 'c1', 1), item('b2', 'c1', 2), item('b3', 'c2', 1)]);
    expect(await a.settle('b1', 0.75)).toBe('settled');
    await a.release('b3');
    await a.close();

    const b = await reopen(dir);
    expect(await b.state('c1')).toMatchObject({ spentUsd: 0.75, reservedUsd: 2, budgetUsd: 10 });
    expect(await b.state('c2')).toMatchObject({ spentUsd: 0, reservedUsd: 0, budgetUsd: 5 });
    expect(await b.settle('b1', 0.75)).toBe('duplicate');
    expect(await b.settle('b2', 2)).toBe('settled');
    await b.close();

    const c = await reopen(dir, T0 + 120_000);
    expect(await c.state('c1')).toMatchObject({ spentUsd: 2.75, reservedUsd: 0, budgetUsd: 10 });
    await c.close();
  });

  it("a win's billing at its price writes that it was heard (a short record), its repeat nothing; a render's writes the level it takes, so a lower win notice after a restart is a duplicate", async () => {
    const dir = freshDir();
    const size = () => fs.readdirSync(dir).filter((f) => f.startsWith('journal.')).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
    const a = await reopen(dir);
    await a.reserve([item('p1', 'c1', 0.012), item('p2', 'c1', 0.012)]);
    expect(await a.settle('p1', 0.012)).toBe('settled');
    const afterWin = size();
    expect(await a.settle('p1', 0.012, 'billing')).toBe('confirmed');
    expect(size() - afterWin).toBe(encodeRecord({ t: 'b', b: 'p1' }).length);
    expect(await a.settle('p1', 0.012, 'billing')).toBe('duplicate');
    expect(size() - afterWin).toBe(encodeRecord({ t: 'b', b: 'p1' }).length);
    expect(await a.settle('p2', 0, 'markup')).toBe('settled');
    const afterRender = size();
    expect(await a.settle('p2', 0.012, 'billing')).toBe('confirmed');
    expect(size()).toBeGreaterThan(afterRender);
    const afterBilling = size();
    expect(await a.settle('p2', 0.012, 'billing')).toBe('duplicate');
    expect(size()).toBe(afterBilling);
    await a.close();
    const b = await reopen(dir);
    expect(await b.settle('p2', 0.001)).toBe('duplicate');
    expect(await b.settle('p1', 0.012, 'billing')).toBe('duplicate');
    expect((await b.state('c1')).spentUsd).toBe(0.024);
    await b.close();
  });

  it('a billing confirmation is kept through compaction, and read from the version before (a once key b:<bid>) after an upgrade', async () => {
    const dir = freshDir();
    const a = await reopen(dir);
    await a.reserve([item('v1', 'c1', 0.01), item('v2', 'c1', 0.01), item('v3', 'c1', 0.01)]);
    for (const id of ['v1', 'v2', 'v3']) expect(await a.settle(id, 0.01)).toBe('settled');
    expect(await a.settle('v1', 0.01, 'billing')).toBe('confirmed');
    await a.compact();
    await a.close();
    // What the version before wrote for v2's billing, logged: a once key until the notices' expiry.
    const journals = fs.readdirSync(dir).filter((f) => f.startsWith('journal.'));
    fs.appendFileSync(path.join(dir, journals[journals.length - 1]), encodeRecord({ t: 'o', k: 'b:v2', e: T0 + 60_000 }));
    const b = await reopen(dir);
    expect(await b.settle('v1', 0.01, 'billing')).toBe('duplicate');
    expect(await b.settle('v2', 0.01, 'billing')).toBe('duplicate');
    expect(await b.settle('v3', 0.01, 'billing')).toBe('confirmed');
    await b.close();
  });

  it("a billing confirmation waits for no disk flush of its own, only for the settlement it confirms; not written, it is undone and its retry confirms afresh", async () => {
    const dir = freshDir();
    const real = nodeFs.fdatasync;
    let syncs = 0;
    nodeFs.fdatasync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
      syncs++;
      return real(fd, cb);
    }) as typeof nodeFs.fdatasync;
    syncBuiltinESMExports();
    try {
      const a = await reopen(dir);
      await a.reserve([item('w1', 'c1', 0.01), item('w2', 'c1', 0.01), item('w3', 'c1', 0.01)]);
      expect(await a.settle('w1', 0.01)).toBe('settled');
      let before = syncs;
      // Nothing written since the win's sync: the confirmation is answered with none.
      expect(await a.settle('w1', 0.01, 'billing')).toBe('confirmed');
      expect(syncs).toBe(before);
      // A settlement written and not yet synced (here: a reservation since, which dirtied the file)
      // is synced before the confirmation's answer, the confirmation's own record not waited for.
      expect(await a.settle('w2', 0.01)).toBe('settled');
      await a.reserve([item('w4', 'c1', 0.01)]);
      before = syncs;
      expect(await a.settle('w2', 0.01, 'billing')).toBe('confirmed');
      expect(syncs).toBe(before + 1);
      // That sync failing: the confirmation is not written and not kept; the retry confirms it.
      expect(await a.settle('w3', 0.01)).toBe('settled');
      await a.reserve([item('w5', 'c1', 0.01)]);
      const undo = failNextFdatasync();
      try {
        await expect(a.settle('w3', 0.01, 'billing')).rejects.toThrow(/EIO/);
      } finally {
        undo();
      }
      expect(await a.settle('w3', 0.01, 'billing')).toBe('confirmed');
      expect(await a.settle('w3', 0.01, 'billing')).toBe('duplicate');
      await a.close();
      const b = await reopen(dir);
      for (const id of ['w1', 'w2', 'w3']) expect(await b.settle(id, 0.01, 'billing'), id).toBe('duplicate');
      await b.close();
    } finally {
      nodeFs.fdatasync = real;
      syncBuiltinESMExports();
    }
  });

  it("a render's billing confirmation written but not known durable is counted now (UnconfirmedSettlement 'confirmed'), its retry a duplicate", async () => {
    const dir = freshDir();
    const a = await reopen(dir);
    await a.reserve([item('m1', 'c1', 0.01)]);
    expect(await a.settle('m1', 0, 'markup')).toBe('settled');
    const undo = failNextFdatasync();
    let err: unknown;
    try {
      err = await a.settle('m1', 0.01, 'billing').catch((e: unknown) => e);
    } finally {
      undo();
    }
    expect(err).toBeInstanceOf(UnconfirmedSettlement);
    expect((err as UnconfirmedSettlement).outcome).toBe('confirmed');
    expect(await a.settle('m1', 0.01, 'billing')).toBe('duplicate');
    await a.close();
  });

  it('round-trips non-ASCII bid and campaign ids through the checksummed journal', async () => {
    const dir = freshDir();
    const log = capture();
    const a = await createMemoryLedger({ clock: () => T0, budgets: { 'ç1': { dailyUsd: 1 } }, reservationTtlMs: 60_000, journalDir: dir, logger: log });
    await a.reserve([{ bidId: 'bé-ü-😀', campaignId: 'ç1', amountUsd: 0.5, expiresAtMs: T0 + 60_000 }]);
    expect(await a.settle('bé-ü-😀', 0.25)).toBe('settled');
    await a.close();
    const b = await createMemoryLedger({ clock: () => T0, budgets: { 'ç1': { dailyUsd: 1 } }, reservationTtlMs: 60_000, journalDir: dir, logger: log });
    expect(await b.state('ç1')).toMatchObject({ spentUsd: 0.25, reservedUsd: 0, budgetUsd: 1 });
    expect(log.warnings).toEqual([]);
    await b.close();
  });

  it('recovers a corrupted tail up to the last good record, with a warning, and appends after it', async () => {
    const dir = freshDir();
    const a = await reopen(dir);
    await a.reserve([item('b1', 'c1', 1), item('b2', 'c1', 1), item('b3', 'c1', 1)]);
    await a.settle('b1', 1);
    await a.settle('b2', 1);
    await a.close();
    const file = path.join(dir, 'journal.1');
    const text = fs.readFileSync(file, 'utf8');
    // Flip a digit inside the last record (b2's settle) and leave a torn half record after it.
    const last = text.lastIndexOf('"p":1000000');
    fs.writeFileSync(file, `${text.slice(0, last)}"p":9000000${text.slice(last + 11)}0badc0de {"t":"s","b":"b3"`);

    const log = capture();
    const b = await reopen(dir, T0, log);
    expect(log.warnings).toEqual([expect.stringMatching(/damaged/), expect.stringMatching(/corrupt/)]);
    expect(await b.state('c1')).toMatchObject({ spentUsd: 1, reservedUsd: 2, budgetUsd: 10 });
    expect(await b.settle('b3', 0.5)).toBe('settled');
    await b.close();

    // The torn tail is gone; the damaged line is still there, and still said.
    const log2 = capture();
    const c = await reopen(dir, T0, log2);
    expect(log2.warnings).toEqual([expect.stringMatching(/damaged/)]);
    expect(await c.state('c1')).toMatchObject({ spentUsd: 1.5, reservedUsd: 1, budgetUsd: 10 });
    await c.close();
  });

  it('a settlement whose sync failed stays in memory as it stays in the file, so what replay gives is what was answered', async () => {
    const dir = freshDir();
    const a = await reopen(dir);
    await a.reserve([item('b1', 'c1', 1)]);
    // One fdatasync fails (EIO): the win was written, not known durable; the exchange is told to
    // retry, and the caller told what stands, to count it now.
    const undo = failNextFdatasync();
    const settled: Settled = { usd: NaN };
    try {
      const err = await a.settle('b1', 0.4, 'win', undefined, settled).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnconfirmedSettlement);
      expect(err).toMatchObject({ outcome: 'settled', message: expect.stringMatching(/EIO/) });
      expect(settled.usd).toBe(0.4);
    } finally {
      undo();
    }
    // Its retry is a duplicate, acknowledged after a fresh sync; the billing notice then corrects it.
    expect(await a.settle('b1', 0.4)).toBe('duplicate');
    expect(await a.settle('b1', 0.25, 'billing')).toBe('corrected');
    expect(await a.state('c1')).toMatchObject({ spentUsd: 0.25 });
    await a.close();
    const b = await reopen(dir);
    // Before: memory undid the win, the billing was written as a first settlement, and replay kept the win's 0.4.
    expect(await b.state('c1')).toMatchObject({ spentUsd: 0.25, reservedUsd: 0 });
    await b.close();
  });

  it('removes at start the journals a snapshot already folded (a crash between its rename and their removal)', async () => {
    const dir = freshDir();
    const a = await reopen(dir);
    await a.reserve([item('b1', 'c1', 1)]);
    await a.settle('b1', 0.5);
    await a.compact();
    await a.close();
    const snapshotText = fs.readFileSync(path.join(dir, 'snapshot'), 'utf8');
    // What such a crash leaves: a journal of a generation the snapshot covers.
    fs.writeFileSync(path.join(dir, 'journal.1'), 'left over\n');
    const b = await reopen(dir);
    expect(fs.existsSync(path.join(dir, 'journal.1'))).toBe(false);
    expect(await b.state('c1')).toMatchObject({ spentUsd: 0.5 });
    expect(fs.readFileSync(path.join(dir, 'snapshot'), 'utf8')).toBe(snapshotText);
    await b.close();
  });

  it('a damaged record in the middle of a journal loses that record only, not the ones after it', async () => {
    const dir = freshDir();
    const a = await reopen(dir);
    await a.reserve([item('b1', 'c1', 1), item('b2', 'c1', 1), item('b3', 'c1', 1)]);
    await a.settle('b1', 1);
    await a.settle('b2', 1);
    await a.settle('b3', 1);
    await a.close();
    const file = path.join(dir, 'journal.1');
    const text = fs.readFileSync(file, 'utf8');
    // Damage b1's settle, the first of three: before, replay stopped there and the file was cut to it.
    const at = text.indexOf('"p":1000000');
    fs.writeFileSync(file, `${text.slice(0, at)}"p":9000000${text.slice(at + 11)}`);
    const log = capture();
    const b = await reopen(dir, T0, log);
    expect(log.warnings).toEqual([expect.stringMatching(/damaged/)]);
    // b2 and b3 settled; b1's settle is lost, so it is held again until its reservation ends.
    expect(await b.state('c1')).toMatchObject({ spentUsd: 2, reservedUsd: 1, budgetUsd: 10 });
    expect(fs.readFileSync(file, 'utf8').length).toBe(text.length);
    await b.close();
  });

  it('compacts into a snapshot that restores the same state, and keeps journaling after it', async () => {
    const dir = freshDir();
    let now = T0;
    const a = await createMemoryLedger({
      clock: () => now,
      budgets,
      reservationTtlMs: 60_000,
      journalDir: dir,
      compactAfterBytes: 4096,
      logger: capture(),
    });
    for (let i = 0; i < 300; i++) {
      const c = i % 3 === 0 ? 'c2' : 'c1';
      await a.reserve([item(`b${i}`, c, 0.01)]);
      if (i % 4 !== 3) expect(await a.settle(`b${i}`, 0.005 + (i % 5) / 1000)).toBe('settled');
      if (i % 7 === 0) await a.release(`b${i}`);
      now += 100;
    }
    await a.compact();
    const before = [await a.state('c1'), await a.state('c2')];
    await a.reserve([item('late', 'c1', 0.5)]);
    await a.close();
    const files = fs.readdirSync(dir).sort();
    expect(files).toContain('snapshot');
    expect(files.filter((f) => f.startsWith('journal.')).length).toBeLessThanOrEqual(2);

    const b = await reopen(dir, now);
    expect(await b.state('c2')).toEqual(before[1]);
    const c1 = await b.state('c1');
    expect(c1.spentUsd).toBe(before[0].spentUsd);
    expect(c1.reservedUsd).toBeCloseTo(before[0].reservedUsd + 0.5, 9);
    expect(await b.settle('b1', 0.001)).toBe('duplicate');
    expect(await b.settle('late', 0.5)).toBe('settled');
    await b.close();
  });
});

describe('journal records', () => {
  it('a reservation line is the generic encoding byte for byte, whatever its ids and numbers', () => {
    const id = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('bid-1', 'é"\\\n\u2028', '\ud800', ''));
    const num = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -0, 1e21, 2 ** 53 + 2, NaN, Infinity, -Infinity));
    fc.assert(
      fc.property(id, id, num, num, num, (b, c, a, e, d) => {
        const rec = { t: 'r' as const, b, c, a, e, d };
        expect(encodeReserve(rec)).toBe(encodeRecord(rec));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('in-process ledger journal, differential', () => {
  it('restarts and compactions at random change no outcome and no state', async () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('reserve' as const), bid: fc.nat(40), c: fc.constantFrom('c1', 'c2'), cents: fc.integer({ min: 1, max: 300 }) }),
      fc.record({ k: fc.constant('settle' as const), bid: fc.nat(40), cents: fc.integer({ min: 0, max: 300 }) }),
      fc.record({ k: fc.constant('release' as const), bid: fc.nat(40) }),
      fc.record({ k: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 90_000 }) }),
      fc.record({ k: fc.constant('restart' as const) }),
      fc.record({ k: fc.constant('compact' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        let now = T0;
        const clock = () => now;
        const dir = freshDir();
        const opts = { clock, budgets, reservationTtlMs: 60_000, retentionMs: 120_000 };
        // The reference keeps everything in memory and never restarts.
        const ref = await createMemoryLedger(opts);
        const open = () => createMemoryLedger({ ...opts, journalDir: dir, compactAfterBytes: 2048, logger: capture() });
        let l = await open();
        try {
          for (const o of ops) {
            if (o.k === 'reserve') {
              const it = [{ bidId: `b${o.bid}`, campaignId: o.c, amountUsd: o.cents / 100, expiresAtMs: now + 60_000 }];
              expect(await l.reserve(it)).toEqual(await ref.reserve(it));
            } else if (o.k === 'settle') {
              expect(await l.settle(`b${o.bid}`, o.cents / 100)).toBe(await ref.settle(`b${o.bid}`, o.cents / 100));
            } else if (o.k === 'release') {
              await l.release(`b${o.bid}`);
              await ref.release(`b${o.bid}`);
            } else if (o.k === 'wait') {
              now += o.ms;
            } else if (o.k === 'compact') {
              await l.compact();
            } else {
              await l.close();
              l = await open();
            }
            for (const c of ['c1', 'c2']) expect(await l.state(c)).toEqual(await ref.state(c));
          }
        } finally {
          await l.close();
          await ref.close();
        }
      }),
      { numRuns: 60, seed: 7 },
    );
  });
});

/**
 * kill -9: a child process settles wins and reports each one after `settle` resolved; the parent
 * kills it mid-stream with SIGKILL, reopens the journal and checks that every acknowledged win is
 * there. The child runs the ledger's own TypeScript, transpiled here with the TypeScript compiler
 * (no type check) because Node 20 cannot run .ts files and no TS loader is installed.
 */
describe('in-process ledger under kill -9', () => {
  const build = path.join(root, 'build');

  beforeAll(() => {
    transpileLedger(build);
    fs.writeFileSync(
      path.join(build, 'child.mjs'),
      `import { createMemoryLedger } from './ledger/memory.js';
const [dir] = process.argv.slice(2);
const ledger = await createMemoryLedger({ clock: Date.now, budgets: { c1: { dailyUsd: 1e6 } },
  reservationTtlMs: 600000, journalDir: dir });
for (let i = 0; ; i++) {
  const bid = 'k' + i;
  await ledger.reserve([{ bidId: bid, campaignId: 'c1', amountUsd: 0.01, expiresAtMs: Date.now() + 600000 }]);
  // Every 10th bid stays reserved only: its win arrives after the restart.
  if (i % 10 === 9) { process.stdout.write('reserved ' + bid + '\\n'); continue; }
  if (await ledger.settle(bid, 0.001 * (1 + (i % 7))) !== 'settled') throw new Error('not settled ' + bid);
  process.stdout.write('settled ' + bid + ' ' + (1000 * (1 + (i % 7))) + '\\n');
}
`,
    );
  });

  it('loses no acknowledged settlement and keeps reservations for late wins', async () => {
    const dir = freshDir();
    const acked = new Map<string, number>();
    const reservedOnly: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(build, 'child.mjs'), dir], { stdio: ['ignore', 'pipe', 'pipe'] });
      let buf = '';
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const [kind, bid, micros] = buf.slice(0, nl).split(' ');
          buf = buf.slice(nl + 1);
          if (kind === 'settled') acked.set(bid, Number(micros));
          else reservedOnly.push(bid);
        }
        if (acked.size >= 400 && !child.killed) child.kill('SIGKILL');
      });
      child.on('exit', (_code, signal) =>
        signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited without SIGKILL: ${stderr}`)),
      );
    });

    const ledger = await createMemoryLedger({
      clock: Date.now,
      budgets: { c1: { dailyUsd: 1e6 } },
      reservationTtlMs: 600_000,
      journalDir: dir,
      logger: capture(),
    });
    const spentMicros = Math.round((await ledger.state('c1')).spentUsd * 1e6);
    const ackedMicros = [...acked.values()].reduce((a, b) => a + b, 0);
    // The child may have settled one more win between its last report and the kill.
    expect(spentMicros).toBeGreaterThanOrEqual(ackedMicros);
    expect(spentMicros - ackedMicros).toBeLessThanOrEqual(7000);
    for (const bid of acked.keys()) expect(await ledger.settle(bid, 0.001)).toBe('duplicate');
    expect(reservedOnly.length).toBeGreaterThan(0);
    for (const bid of reservedOnly) expect(await ledger.settle(bid, 0.002)).toBe('settled');
    await ledger.close();
  });
});

/**
 * Review 2026-12-02 item 1: a settle whose journal write fails was answered 503, but left the bid
 * SETTLED in memory, so the exchange's retry was a "duplicate" answered 200 while nothing was on
 * disk, and a restart forgot the win. A real full disk: the child runs under `ulimit -f` (EFBIG).
 */
describe('a failed journal write is never acknowledged later', () => {
  const build = path.join(root, 'build-full');

  beforeAll(() => {
    transpileLedger(build);
    // Won bids have long ids, so their settle records are longer than the fill reservations: once
    // a fill reservation no longer fits, no settlement fits either.
    fs.writeFileSync(
      path.join(build, 'full.mjs'),
      `import { createMemoryLedger } from './ledger/memory.js';
const [dir] = process.argv.slice(2);
const quiet = { warn() {} };
const ledger = await createMemoryLedger({ clock: Date.now, budgets: { c1: { dailyUsd: 1e6 } },
  reservationTtlMs: 600000, journalDir: dir, compactor: 'inline', logger: quiet });
const item = (bidId) => ({ bidId, campaignId: 'c1', amountUsd: 0.01, expiresAtMs: Date.now() + 600000 });
const wins = [0, 1, 2, 3, 4].map((i) => 'win-' + i + '-padded-to-be-longer-than-a-fill');
await ledger.reserve(wins.map(item));
let fill = 0;
for (;;) {
  try { await ledger.reserve([item('f' + fill++)]); } catch (err) { process.stdout.write('full ' + err.code + '\\n'); break; }
}
// Each win notice twice: the first try and the exchange's retry.
for (const bid of wins) for (let t = 0; t < 2; t++) {
  try { process.stdout.write('ack ' + bid + ' ' + (await ledger.settle(bid, 0.002)) + '\\n'); }
  catch (err) { process.stdout.write('err ' + bid + ' ' + err.code + '\\n'); }
}
process.exit(0);
`,
    );
  });

  it('a failed journal write is never acknowledged later: under a full disk every acknowledged settlement is in the journal after a restart', async () => {
    const dir = freshDir();
    const run = spawnSync('bash', ['-c', `ulimit -f 16 && exec "${process.execPath}" "${path.join(build, 'full.mjs')}" "${dir}"`], { encoding: 'utf8', timeout: 60_000 });
    expect(run.stderr).toBe('');
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toBe('full EFBIG');
    const acked = lines.filter((l) => l.startsWith('ack '));
    const failed = lines.filter((l) => l.startsWith('err '));
    // The disk stays full: every try fails, the retry too (before the fix the retry was "ack ... duplicate").
    expect(failed.length).toBe(10);
    expect(acked).toEqual([]);

    // Restart with room on the disk: what was acknowledged is there, and the exchange's next retry settles.
    const ledger = await createMemoryLedger({ clock: Date.now, budgets: { c1: { dailyUsd: 1e6 } }, reservationTtlMs: 600_000, journalDir: dir, logger: capture() });
    expect((await ledger.state('c1')).spentUsd).toBe(0);
    for (let i = 0; i < 5; i++) expect(await ledger.settle(`win-${i}-padded-to-be-longer-than-a-fill`, 0.002)).toBe('settled');
    expect((await ledger.state('c1')).spentUsd).toBeCloseTo(0.01, 9);
    await ledger.close();
  });

  it('a failed journal write leaves memory as it was: a failed reservation holds no budget, a failed settle settles on the retry', async () => {
    // /dev/full answers every write with ENOSPC; a compaction switches the ledger onto it.
    const dir = freshDir();
    let now = T0;
    const ledger = await createMemoryLedger({ clock: () => now, budgets, reservationTtlMs: 60_000, journalDir: dir, compactor: 'inline', logger: capture() });
    await ledger.reserve([item('h1', 'c1', 1)]);
    const next = Math.max(...fs.readdirSync(dir).filter((f) => f.startsWith('journal.')).map((f) => Number(f.split('.')[1]))) + 1;
    fs.symlinkSync('/dev/full', path.join(dir, `journal.${next}`));
    await ledger.compact();
    await expect(ledger.reserve([item('h2', 'c1', 2)])).rejects.toThrow(/ENOSPC/);
    expect(await ledger.state('c1')).toMatchObject({ spentUsd: 0, reservedUsd: 1 });
    await expect(ledger.settle('h1', 0.5)).rejects.toThrow(/ENOSPC/);
    await expect(ledger.settle('h1', 0.5)).rejects.toThrow(/ENOSPC/);
    expect(await ledger.state('c1')).toMatchObject({ spentUsd: 0, reservedUsd: 1 });
    // A win and its billing in flight together, both failing: each puts back what it changed, in
    // turn (each undoing from its own start, the first under the second's change, left the bid
    // settled in memory at the win's price with its reservation still counted).
    const both = await Promise.allSettled([ledger.settle('h1', 0.4), ledger.settle('h1', 0.6, 'billing')]);
    expect(both.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(await ledger.state('c1')).toMatchObject({ spentUsd: 0, reservedUsd: 1 });
    // A release that could not be written holds its reservation still, as the journal does; so
    // does a release failing in one write with a settle of the same bid.
    await expect(ledger.release('h1')).rejects.toThrow(/ENOSPC/);
    expect(await ledger.state('c1')).toMatchObject({ spentUsd: 0, reservedUsd: 1 });
    const pair = await Promise.allSettled([ledger.release('h1'), ledger.settle('h1', 0.5)]);
    expect(pair.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(await ledger.state('c1')).toMatchObject({ spentUsd: 0, reservedUsd: 1 });
    // Past its expiry the reservation ends as the journal's would.
    now += 61_000;
    expect(await ledger.state('c1')).toMatchObject({ spentUsd: 0, reservedUsd: 0 });
    now += 1;
    await ledger.close().catch(() => {});
  });
});

/** Review 2026-12-02 item 3: two processes on one journal each granted the whole budget. */
describe('one process per journal', () => {
  const build = path.join(root, 'build-lock');
  beforeAll(() => {
    transpileLedger(build);
    fs.writeFileSync(
      path.join(build, 'hold.mjs'),
      `import { createMemoryLedger } from './ledger/memory.js';
await createMemoryLedger({ clock: Date.now, budgets: { c1: { dailyUsd: 1 } }, reservationTtlMs: 60000, journalDir: process.argv[2], compactor: 'inline' });
process.stdout.write('held\\n');
setInterval(() => {}, 1000);
`,
    );
    // The same, started on a barrier: it says 'ready', and takes the journal once the barrier file exists.
    fs.writeFileSync(
      path.join(build, 'hold-barrier.mjs'),
      `import { existsSync } from 'node:fs';
import { createMemoryLedger } from './ledger/memory.js';
process.stdout.write('ready\\n');
while (!existsSync(process.argv[3])) await new Promise((r) => setTimeout(r, 1));
await createMemoryLedger({ clock: Date.now, budgets: { c1: { dailyUsd: 1 } }, reservationTtlMs: 60000, journalDir: process.argv[2], compactor: 'inline' });
process.stdout.write('held\\n');
setInterval(() => {}, 1000);
`,
    );
  });

  it('one process per journal: a second process refuses to start, naming the holder pid; a holder killed with -9 leaves no lock behind', async () => {
    const dir = freshDir();
    const child = spawn(process.execPath, [path.join(build, 'hold.mjs'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
        child.on('exit', (code) => reject(new Error(`holder exited ${code}`)));
      });
      await expect(reopen(dir)).rejects.toThrow(new RegExp(`in use by another bidder process \\(pid ${child.pid}\\)`));
      // The advice does not send the operator to a second journal, which would double the budget.
      await expect(reopen(dir)).rejects.toThrow(/share a Redis ledger/);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    const l = await reopen(dir);
    // In the same process too: a second ledger on an open directory is refused until the first closes.
    await expect(reopen(dir)).rejects.toThrow(new RegExp(`pid ${process.pid}`));
    await l.close();
    const again = await reopen(dir);
    await again.close();
  });

  it('after a holder killed with -9, of two processes starting together exactly one takes the journal', async () => {
    const start = (dir: string, barrier: string) => {
      const child = spawn(process.execPath, [path.join(build, 'hold-barrier.mjs'), dir, barrier], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      const ready = new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => (out += d.toString()).includes('ready') && resolve()));
      const outcome = new Promise<'held' | 'refused'>((resolve) => {
        child.stdout!.on('data', () => out.includes('held') && resolve('held'));
        child.on('exit', () => resolve('refused'));
      });
      return { child, ready, outcome };
    };
    for (let round = 0; round < 6; round++) {
      const dir = freshDir();
      const barrier = `${dir}.go`;
      fs.writeFileSync(barrier, '');
      const first = start(dir, barrier);
      expect(await first.outcome).toBe('held');
      first.child.kill('SIGKILL');
      await new Promise((r) => first.child.once('exit', r));
      fs.rmSync(barrier);
      // Both wait on the barrier, then find the dead holder's lock together.
      const pair = [start(dir, barrier), start(dir, barrier)];
      await Promise.all(pair.map((p) => p.ready));
      fs.writeFileSync(barrier, '');
      const outcomes = await Promise.all(pair.map((p) => p.outcome));
      for (const p of pair) if (p.child.exitCode === null) (p.child.kill('SIGKILL'), await new Promise((r) => p.child.once('exit', r)));
      expect(outcomes.sort(), `round ${round}`).toEqual(['held', 'refused']);
    }
  }, 60_000);

  it('refuses, at the first start, a journal folder whose lock socket path would be cut short', async () => {
    const dir = path.join(freshDir(), 'x'.repeat(120));
    await expect(reopen(dir)).rejects.toThrow(/more than a Unix socket may have \(107\); choose a shorter ledger.journalPath/);
  });

  it('a journal folder under /proc, and paused.json and retired.json beside it, fail at once (ENOENT)', async () => {
    // mkdir there answers ENOENT with the parent present, on which Node 20's recursive mkdir looped
    // forever, holding the thread: `serve` hung at start.
    const dir = `/proc/ledger-test-${process.pid}/journal`;
    await expect(reopen(dir)).rejects.toThrow(/ENOENT/);
    expect(() => pausedFile(path.join(dir, 'paused.json')).write(['c1'])).toThrow(/ENOENT/);
    expect(() => retiredFile(path.join(dir, 'retired.json')).write(new Map())).toThrow(/ENOENT/);
  });
});

describe('journal writer: appends of one loop turn share one write', () => {
  it('a record is in the file when its append resolves; the appends of a turn land together, in order', async () => {
    const file = path.join(freshDir() + '.journal');
    const w = openJournalWriter(file, false);
    const a = w.append('a\n');
    const b = w.append('b\n');
    // Nothing is written during the turn that appended.
    expect(fs.readFileSync(file, 'utf8')).toBe('');
    expect(w.bytes).toBe(4);
    await Promise.all([a, b]);
    expect(fs.readFileSync(file, 'utf8')).toBe('a\nb\n');
    await w.append('c\n');
    expect(fs.readFileSync(file, 'utf8')).toBe('a\nb\nc\n');
    await w.close();
  });

  it('notices appended in one loop turn, from separate callbacks, share one write at the end of the turn', async () => {
    const file = path.join(freshDir() + '.journal');
    const w = openJournalWriter(file, false);
    const a = w.appendInTurn('a\n');
    // A later callback of the same turn (after the first one's microtasks ran) joins the same write.
    await Promise.resolve();
    await new Promise<void>((r) => queueMicrotask(r));
    expect(fs.readFileSync(file, 'utf8')).toBe('');
    const b = w.appendInTurn('b\n');
    expect(b).toBe(a);
    await a;
    expect(fs.readFileSync(file, 'utf8')).toBe('a\nb\n');
    // A batch's append in the same turn writes at once, notices pending before it included.
    const c = w.appendInTurn('c\n');
    const d = w.append('d\n');
    await d;
    expect(fs.readFileSync(file, 'utf8')).toBe('a\nb\nc\nd\n');
    await c;
    await new Promise((r) => setImmediate(r));
    expect(fs.readFileSync(file, 'utf8')).toBe('a\nb\nc\nd\n');
    await w.close();
  });

  it('with a sync window, settlements of later turns written before the sync starts share its fdatasync', async () => {
    const file = path.join(freshDir() + '.journal');
    const w = openJournalWriter(file, true, 20);
    await w.append('a\n');
    const first = w.durable();
    await new Promise((r) => setImmediate(r));
    await w.appendInTurn('b\n');
    // Written while the window is open: the sync that starts after it covers this record too.
    expect(w.durable()).toBe(first);
    await first;
    // Nothing written since that sync began: already durable.
    await w.durable();
    await w.append('c\n');
    const second = w.durable();
    expect(second).not.toBe(first);
    await second;
    expect(fs.readFileSync(file, 'utf8')).toBe('a\nb\nc\n');
    await w.close();
  });

  it('a failed write rejects the append of every record in it (the caller never acknowledges it)', async () => {
    // /dev/full answers every write with ENOSPC, as a full disk does.
    const w = openJournalWriter('/dev/full', false);
    const results = await Promise.allSettled([w.append('a\n'), w.append('b\n'), w.appendInTurn('c\n')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    const inTurn = await Promise.allSettled([w.appendInTurn('e\n'), w.appendInTurn('f\n')]);
    expect(inTurn.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/ENOSPC/);
  });

  it('refuses appends once closing, and a closed ledger refuses to reserve instead of granting unrecorded', async () => {
    const w = openJournalWriter(path.join(freshDir() + '.journal'), true);
    const last = w.append('a\n');
    const closed = w.close();
    await expect(w.append('b\n')).rejects.toThrow(/closed/);
    await last;
    await closed;
    const ledger = await createMemoryLedger({ budgets, clock: () => T0, reservationTtlMs: 60_000, journalDir: freshDir(), logger: capture() });
    await ledger.close();
    await expect(ledger.reserve([{ bidId: 'after-close', campaignId: 'c1', amountUsd: 0.001, expiresAtMs: T0 + 60_000 }])).rejects.toThrow(/closed/);
  });
});
