import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEventLog } from '../src/eventlog/eventlog.js';
import { eventFiles, readEvents } from '../src/eventlog/read.js';
import type { EventRecord } from '../src/eventlog/records.js';

/**
 * A full disk, by hand: while `disk.full`, every write to a file of the test's folder fails with
 * ENOSPC (a file can still be made). Opens of event log files and the listings of a prune counted.
 */
const real = { writeSync: fs.writeSync, openSync: fs.openSync, unlinkSync: fs.unlinkSync };
const realReaddir = fs.promises.readdir;
const disk = { full: false, opens: 0, unlinks: 0, readdirs: 0, dir: '' };

function install(): void {
  const f = fs as unknown as Record<string, unknown>;
  f.openSync = (...a: Parameters<typeof fs.openSync>) => {
    if (String(a[0]).startsWith(disk.dir)) disk.opens++;
    return real.openSync(...a);
  };
  f.unlinkSync = (p: fs.PathLike) => {
    if (String(p).startsWith(disk.dir)) disk.unlinks++;
    real.unlinkSync(p);
  };
  f.writeSync = (fd: number, ...a: unknown[]) => {
    if (disk.full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    return (real.writeSync as (...a: unknown[]) => number)(fd, ...a);
  };
  (fs.promises as unknown as Record<string, unknown>).readdir = (...a: Parameters<typeof realReaddir>) => {
    disk.readdirs++;
    return realReaddir(...a);
  };
  syncBuiltinESMExports();
}

afterEach(() => {
  Object.assign(fs, real);
  fs.promises.readdir = realReaddir;
  syncBuiltinESMExports();
  fs.rmSync(disk.dir, { recursive: true, force: true });
  Object.assign(disk, { full: false, opens: 0, unlinks: 0, readdirs: 0, dir: '' });
});

const win = (bidId: string, ts: number): EventRecord => ({ type: 'win', ts, bidId, campaignId: 'acme-shoes', creativeId: 'x', priceCpmUsd: 2 });
const loss = (bidId: string, ts: number): EventRecord => ({ type: 'loss', ts, bidId, campaignId: 'acme-shoes', creativeId: 'x', lossReason: 102 });

describe('event log: a storm of notices while the disk is full', () => {
  it('opens a handful of files, not one per notice, prunes once, and still logs a win settled once space is back', async () => {
    disk.dir = fs.mkdtempSync(join(tmpdir(), 'eventlog-storm-'));
    // The files of earlier days, which a prune pass lists and sizes.
    for (let i = 0; i < 50; i++) fs.writeFileSync(join(disk.dir, `events-20260501T0000${String(i).padStart(2, '0')}-0.ndjson`), '{}\n');
    install();
    let now = Date.parse('2026-06-01T12:00:00Z');
    const seen = { errors: 0, drops: 0, failing: 0, writable: 0 };
    const log = createEventLog({ dir: disk.dir, rotateBytes: 1 << 20, keepBytes: 1 << 30, enabled: true, clock: () => now, onError: () => seen.errors++, onFailing: () => seen.failing++, onWritable: () => seen.writable++, onDrop: () => seen.drops++ });
    log.append(win('w0', now));
    await new Promise((r) => setTimeout(r, 20));
    const before = { opens: disk.opens, readdirs: disk.readdirs };

    // The reviewer's storm: 1,000 loss notices over 2 s, 10 a turn.
    disk.full = true;
    for (let i = 0; i < 1000; i += 10) {
      for (let j = 0; j < 10; j++) log.append(loss(`l${i + j}`, now));
      now += 20;
      await new Promise((r) => setTimeout(r, 1));
    }
    // The notices held through the last wait are tried when it ends, the disk still full.
    await new Promise((r) => setTimeout(r, 300));
    // Before: 1,000 files opened (and removed empty), and a prune pass begun every few turns. One
    // pass now, as at the start: the file the first failure closed held w0, so the tree grew.
    expect(disk.opens - before.opens).toBeLessThanOrEqual(2000 / 250 + 1);
    expect(disk.readdirs - before.readdirs).toBe(before.readdirs);
    expect(seen.drops).toBe(1000);
    expect(seen.failing).toBe(1);

    // Space is back; the bidder's own retry settles a win 1 s later: logged.
    disk.full = false;
    now += 1000;
    log.append(win('w1', now));
    await log.close();
    expect(seen.writable).toBe(1);
    const wins: string[] = [];
    for await (const r of readEvents(eventFiles([disk.dir]), () => {})) if (r.type === 'win') wins.push(r.bidId);
    expect(wins.sort()).toEqual(['w0', 'w1']);
    // The files the failed tries made, empty, are gone.
    expect(fs.readdirSync(disk.dir).length).toBe(52);
  });
});
