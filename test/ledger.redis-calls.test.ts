import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
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

  // This host's pid namespace tag, as the files name it: `<pid>-<start>-<space>-t<thread>-<prefix>.calls`.
  const space = (() => {
    const dir = fresh();
    const log = openCallLog(dir, 'probe.', 60_000, quiet)!;
    const [own] = readdirSync(join(dir, 'redis-calls'));
    log.close();
    return own.split('-')[2];
  })();
  const age = (dir: string, name: string, ms: number) => {
    const t = new Date(Date.now() - ms);
    utimesSync(join(dir, 'redis-calls', name), t, t);
  };

  it("leaves a touched file's calls alone whatever its pid, and loads them once it is untouched (two containers on one volume, both pid 1); a running pid of this namespace's, never", () => {
    const dir = fresh();
    const names = [`${process.pid}-s2-other-t0-pid1.calls`, `${deadPid()}-s3-other-t0-dead.calls`, `1-s4-t0-old.calls`];
    names.forEach((n, i) => leave(dir, n, [[`c${i}.1`, `b${i}\n1`]]));
    // Pid 1 of this namespace runs (init): its file is taken as a live process's however long it
    // went untouched, as a process whose loop stalled past the heartbeat's window (fix review fixrev9).
    const running = `1-s1-${space}-t0-init.calls`;
    leave(dir, running, [['r.1', 'r\n1']]);
    // Touched moments ago: a process still running (its heartbeat), counting its own answers.
    const a = openCallLog(dir, 'a.', 60_000, quiet)!;
    expect(a.earlier).toEqual([]);
    a.close();
    // Untouched past a minute: gone, whatever pid runs in its namespace.
    for (const n of [...names, running]) age(dir, n, 61_000);
    const b = openCallLog(dir, 'b.', 60_000, quiet)!;
    expect([...b.earlier].sort()).toEqual(names.map((_, i) => [`b${i}\n1`, `c${i}.1`]).sort());
    b.close();
    // Past the keep time and the heartbeat's window, removed, the running pid's too.
    for (const n of [...names, running]) age(dir, n, 121_000);
    const c = openCallLog(dir, 'c.', 60_000, quiet)!;
    expect(c.earlier).toEqual([]);
    c.close();
    expect(readdirSync(join(dir, 'redis-calls'))).toEqual([]);
  });

  it('loads at once a touched file whose pid, in this pid namespace, is gone or is this process with another start (a kill -9 and restart)', () => {
    const dir = fresh();
    leave(dir, `${deadPid()}-s1-${space}-t0-dead.calls`, [['dead.1', 'b1\n1']]);
    leave(dir, `${process.pid}-s2-${space}-t0-before.calls`, [['before.1', 'b2\n1']]);
    const a = openCallLog(dir, 'a.', 60_000, quiet)!;
    expect([...a.earlier].sort()).toEqual([['b1\n1', 'dead.1'], ['b2\n1', 'before.1']]);
    a.close();
  });

  it('loads a touched file from a later heartbeat once it is untouched (killed moments before the start, in another container)', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const dir = fresh();
      leave(dir, `1-s1-other-t0-killed.calls`, [['killed.1', 'b1\n1']]);
      const found: string[][] = [];
      const a = openCallLog(dir, 'a.', 60_000, quiet, (key, call) => found.push([key, call]))!;
      expect(found).toEqual([]);
      vi.advanceTimersByTime(5_000);
      expect(found).toEqual([]);
      age(dir, `1-s1-other-t0-killed.calls`, 61_000);
      vi.advanceTimersByTime(5_000);
      expect(found).toEqual([['b1\n1', 'killed.1']]);
      expect(a.earlier).toEqual([['b1\n1', 'killed.1']]);
      a.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('touches its own file while open', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const dir = fresh();
      const a = openCallLog(dir, 'a.', 60_000, quiet)!;
      a.sent('a.1', 'b1\n1');
      const [own] = readdirSync(join(dir, 'redis-calls'));
      age(dir, own, 16_000);
      vi.advanceTimersByTime(5_000);
      expect(Date.now() - statSync(join(dir, 'redis-calls', own)).mtimeMs).toBeLessThan(15_000);
      // Closed with a call open: untouched from then, loaded by the next start at once.
      a.close();
      const b = openCallLog(dir, 'b.', 60_000, quiet)!;
      expect(b.earlier).toEqual([['b1\n1', 'a.1']]);
      b.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps the call log when a file vanishes while a start reads the folder (workers of one restart)', () => {
    const dir = fresh();
    leave(dir, `${deadPid()}-s1-${space}-t0-kept.calls`, [['kept.1', 'b1\n1']]);
    // As a file a sibling worker removed between the listing and the stat.
    symlinkSync(join(dir, 'nowhere'), join(dir, 'redis-calls', `${deadPid()}-s2-t0-gone.calls`));
    const a = openCallLog(dir, 'a.', 60_000, quiet);
    expect(a).not.toBeNull();
    expect(a!.earlier).toEqual([['b1\n1', 'kept.1']]);
    a!.close();
  });
});
