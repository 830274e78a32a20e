import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCallLog } from '../src/ledger/redis-calls.js';

const quiet = { warn: () => {} };
const turn = () => new Promise((r) => setImmediate(r));

describe("the Redis ledger's settle calls kept in the data folder", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const fresh = () => {
    const d = mkdtempSync(join(tmpdir(), 'redis-calls-'));
    dirs.push(d);
    return d;
  };

  it('leaves the calls still open to the next start, and none once all are answered', async () => {
    const dir = fresh();
    const a = openCallLog(dir, 'a.', 60_000, quiet)!;
    expect(a.earlier).toEqual([]);
    a.sent('a.1', 'b1\n1');
    a.sent('a.2', 'b2\n1');
    a.answered('a.1');
    await turn();
    a.close();
    const b = openCallLog(dir, 'b.', 60_000, quiet)!;
    expect(b.earlier).toEqual([['b2\n1', 'a.2']]);
    b.sent('b.1', 'b3\n2');
    b.answered('b.1');
    b.close();
    // b's file is gone (nothing open); a's stays for its keep time, read again by each start.
    const c = openCallLog(dir, 'c.', 60_000, quiet)!;
    expect(c.earlier).toEqual([['b2\n1', 'a.2']]);
    c.close();
    expect(readdirSync(join(dir, 'redis-calls'))).toHaveLength(1);
    // Past the keep time, removed.
    const d = openCallLog(dir, 'd.', -1, quiet)!;
    expect(d.earlier).toEqual([]);
    d.close();
    expect(readdirSync(join(dir, 'redis-calls'))).toEqual([]);
  });

  it('stays bounded: rewritten with the open calls once past 1 MiB', async () => {
    const dir = fresh();
    const log = openCallLog(dir, 'x.', 60_000, quiet)!;
    for (let i = 0; i < 60_000; i++) {
      log.sent(`x.${i}`, `bid-${i}\n1`);
      if (i !== 7) log.answered(`x.${i}`);
      if (i % 100 === 99) await turn();
    }
    await turn();
    const [file] = readdirSync(join(dir, 'redis-calls'));
    expect(statSync(join(dir, 'redis-calls', file)).size).toBeLessThan(1 << 20);
    log.close();
    const next = openCallLog(dir, 'y.', 60_000, quiet)!;
    expect(next.earlier).toEqual([['bid-7\n1', 'x.7']]);
    next.close();
  });

  // A pid no process has (one that ran and exited).
  const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;
  const leave = (dir: string, name: string, lines: unknown[]) => {
    mkdirSync(join(dir, 'redis-calls'), { recursive: true });
    writeFileSync(join(dir, 'redis-calls', name), lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  };

  it("leaves a live process's calls alone (two processes on one folder: an overlapping restart)", async () => {
    const dir = fresh();
    const live = spawn('sleep', ['60']);
    try {
      leave(dir, `${live.pid}-s1-t0-live.calls`, [['live.1', 'b1\n1']]);
      // The live process counts its own answer: loading its call would count a duplicate win twice.
      const a = openCallLog(dir, 'a.', 60_000, quiet)!;
      expect(a.earlier).toEqual([]);
      a.close();
    } finally {
      live.kill('SIGKILL');
      await new Promise((r) => live.once('exit', r));
    }
    // Gone: its open call is loaded.
    const b = openCallLog(dir, 'b.', 60_000, quiet)!;
    expect(b.earlier).toEqual([['b1\n1', 'live.1']]);
    b.close();
    // A container's restart brings back the same pid: a file of this pid with another start is not this process's.
    leave(dir, `${process.pid}-old-t0-old.calls`, [['old.1', 'b2\n1']]);
    const c = openCallLog(dir, 'c.', 60_000, quiet)!;
    expect(c.earlier).toContainEqual(['b2\n1', 'old.1']);
    c.close();
  });

  it('keeps the call log when a file vanishes while a start reads the folder (workers of one restart)', () => {
    const dir = fresh();
    leave(dir, `${deadPid()}-s1-t0-kept.calls`, [['kept.1', 'b1\n1']]);
    // As a file a sibling worker removed between the listing and the stat.
    symlinkSync(join(dir, 'nowhere'), join(dir, 'redis-calls', `${deadPid()}-s2-t0-gone.calls`));
    const a = openCallLog(dir, 'a.', 60_000, quiet);
    expect(a).not.toBeNull();
    expect(a!.earlier).toEqual([['b1\n1', 'kept.1']]);
    a!.close();
  });
});
