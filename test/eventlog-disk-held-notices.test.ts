import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEventLog } from '../src/eventlog/eventlog.js';
import { eventFiles, readEvents } from '../src/eventlog/read.js';
import type { EventRecord } from '../src/eventlog/records.js';

/** A full disk, by hand: while `disk.full`, every write fails with ENOSPC (a file can still be made). */
const real = { writeSync: fs.writeSync, write: fs.write, openSync: fs.openSync };
const disk = { full: false, dir: '', opens: 0 };

function install(): void {
  const f = fs as unknown as Record<string, unknown>;
  f.openSync = (...a: Parameters<typeof fs.openSync>) => {
    if (String(a[0]).startsWith(disk.dir)) disk.opens++;
    return real.openSync(...a);
  };
  f.writeSync = (fd: number, ...a: unknown[]) => {
    if (disk.full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    return (real.writeSync as (...a: unknown[]) => number)(fd, ...a);
  };
  f.write = (fd: number, ...a: unknown[]) => {
    const cb = a.pop() as (e: Error | null, w: number) => void;
    if (disk.full) return void setImmediate(() => cb(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }), 0));
    (real.write as (...a: unknown[]) => void)(fd, ...a, cb);
  };
  syncBuiltinESMExports();
}

afterEach(() => {
  Object.assign(fs, real);
  syncBuiltinESMExports();
  fs.rmSync(disk.dir, { recursive: true, force: true });
  Object.assign(disk, { full: false, dir: '', opens: 0 });
});

const win = (bidId: string, ts: number): EventRecord => ({ type: 'win', ts, bidId, campaignId: 'acme-shoes', creativeId: 'x', priceCpmUsd: 2 });
const ctx = { requestId: 'r', impId: '1', exchange: 'default', isApp: false, siteOrAppId: 's1', publisherId: 'p', domain: 'news.example', categories: ['IAB12'], deviceType: 2, os: '', country: 'US', region: '', hour: 12, format: 'banner', w: 300, h: 250, dealId: '', userKey: '', segments: [], userDataAllowed: false };
const bid = (bidId: string, ts: number): EventRecord => ({ type: 'bid', ts, bidId, campaignId: 'acme-shoes', creativeId: 'x', priceCpmUsd: 2, pctr: 0.01, modelVersion: 'm', ctx });

async function wins(dir: string): Promise<string[]> {
  const got: string[] = [];
  for await (const r of readEvents(eventFiles([dir]), () => {})) if (r.type === 'win') got.push(r.bidId);
  return got.sort();
}

function start(now: () => number, opts: { rotateBytes?: number; keepBytes?: number } = {}) {
  disk.dir = fs.mkdtempSync(join(tmpdir(), 'eventlog-held-'));
  install();
  const seen = { drops: 0, errors: 0 };
  const log = createEventLog({ dir: disk.dir, rotateBytes: opts.rotateBytes ?? 1 << 20, keepBytes: opts.keepBytes ?? 1 << 30, enabled: true, clock: now, onError: () => seen.errors++, onDrop: () => seen.drops++ });
  return { log, seen };
}

describe('event log: notices within the wait after a failure', () => {
  it('a win 100 ms after space is back, no notice after it, is written when the wait ends (the review: dropped for good, 2 drops)', async () => {
    let now = Date.parse('2026-06-01T12:00:00Z');
    const { log, seen } = start(() => now);
    log.append(win('w0', now));
    disk.full = true;
    log.append(win('w-lost', now));
    now += 50;
    disk.full = false;
    now += 100;
    // Settled by the ledger; its exchange's retry is a duplicate that logs nothing.
    log.append(win('w1', now));
    expect(await wins(disk.dir)).toEqual(['w0']);
    // No notice for an hour: the wait's own timer writes it, before any close.
    await new Promise((r) => setTimeout(r, 400));
    expect(await wins(disk.dir)).toEqual(['w0', 'w1']);
    expect(seen.drops).toBe(1);
    await log.close();
  });

  it('held ones are written at close if the wait has not ended by then', async () => {
    let now = Date.parse('2026-06-01T12:00:00Z');
    const { log, seen } = start(() => now);
    log.append(win('w0', now));
    disk.full = true;
    log.append(win('w-lost', now));
    disk.full = false;
    now += 150;
    log.append(win('w1', now));
    await log.close();
    expect(await wins(disk.dir)).toEqual(['w0', 'w1']);
    expect(seen.drops).toBe(1);
  });

  it('at most 512 held, the rest dropped and counted; the disk still full at the wait\'s end, one open for them all', async () => {
    let now = Date.parse('2026-06-01T12:00:00Z');
    const { log, seen } = start(() => now);
    log.append(win('w0', now));
    disk.full = true;
    log.append(win('w-lost', now));
    const opens = disk.opens;
    for (let i = 0; i < 600; i++) log.append(win(`h${i}`, now));
    expect(seen.drops).toBe(1 + 600 - 512);
    await new Promise((r) => setTimeout(r, 400));
    expect(disk.opens - opens).toBe(1);
    expect(seen.drops).toBe(601);
    disk.full = false;
    await log.close();
    expect(await wins(disk.dir)).toEqual(['w0']);
  });
});

describe('event log: pruning after failures', () => {
  it('a file closed by a failure with records in it prunes at the next open (the review: 40 files, 3.6 MB against keepBytes 200 KB)', async () => {
    let now = Date.parse('2026-06-01T12:00:00Z');
    const rotateBytes = 100_000;
    const keepBytes = 200_000;
    const { log } = start(() => now, { rotateBytes, keepBytes });
    for (let round = 0; round < 40; round++) {
      // ~90 KB, under rotateBytes.
      for (let i = 0; i < 200; i++) log.append(bid(`b${round}-${i}`, now));
      await new Promise((r) => setTimeout(r, 5));
      // A short outage: one notice fails.
      disk.full = true;
      log.append(win(`w${round}`, now));
      disk.full = false;
      now += 6_000;
      await new Promise((r) => setTimeout(r, 5));
    }
    await log.close();
    await new Promise((r) => setTimeout(r, 50));
    const files = fs.readdirSync(disk.dir);
    const total = files.reduce((t, f) => t + fs.statSync(join(disk.dir, f)).size, 0);
    expect(total).toBeLessThanOrEqual(keepBytes + rotateBytes);
    expect(files.length).toBeLessThanOrEqual(3);
  });

  it('close() waits for the prune that writing the held records started (fix review fixrevh: 202 files when close() resolved, 2 a moment later, the shutdown going on meanwhile)', async () => {
    let now = Date.parse('2026-06-01T12:00:00Z');
    const { log } = start(() => now, { keepBytes: 1000 });
    log.append(win('w00', now));
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 200; i++) {
      const old = join(disk.dir, `events-20260101T000000-${i}.ndjson`);
      fs.writeFileSync(old, 'x'.repeat(2000));
      fs.utimesSync(old, 1000 + i, 1000 + i);
    }
    log.append(win('w0', now));
    disk.full = true;
    // Closes a file with records in it: the next file prunes.
    log.append(win('w-lost', now));
    disk.full = false;
    now += 100;
    log.append(win('w1', now));
    await log.close();
    expect(fs.readdirSync(disk.dir).length).toBeLessThanOrEqual(3);
  });
});
