import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEventLog } from '../src/eventlog/eventlog.js';
import { eventFiles, readEvents } from '../src/eventlog/read.js';
import type { EventRecord } from '../src/eventlog/records.js';

/**
 * A disk that fills and empties again, by hand: while `disk.full`, every write to a file of the
 * test's folder fails with `disk.code` (a file can still be made, as on a full disk whose folder
 * has room for a name), or with `disk.short` is cut short, as a file size limit cuts the first.
 */
const real = { write: fs.write, writeSync: fs.writeSync, openSync: fs.openSync };
const disk = { full: false, code: 'ENOSPC', short: false, opens: 0, fds: new Set<number>() };
const dirs: string[] = [];

function fail(): NodeJS.ErrnoException {
  return Object.assign(new Error(`${disk.code}: refused, write`), { code: disk.code });
}

function install(): void {
  const f = fs as unknown as Record<string, unknown>;
  f.openSync = (...a: Parameters<typeof fs.openSync>) => {
    const fd = real.openSync(...a);
    if (String(a[0]).startsWith(dirs[dirs.length - 1])) {
      disk.opens++;
      disk.fds.add(fd);
    }
    return fd;
  };
  f.writeSync = (fd: number, buf: Buffer, off?: number, len?: number) => {
    if (disk.full && disk.fds.has(fd)) {
      if (disk.short) return (real.writeSync as (...a: unknown[]) => number)(fd, buf, off, Math.min(len ?? buf.length, 10));
      throw fail();
    }
    return (real.writeSync as (...a: unknown[]) => number)(fd, buf, off, len);
  };
  f.write = (fd: number, ...a: unknown[]) => {
    const cb = a.pop() as (err: Error | null, w: number) => void;
    if (disk.full && disk.fds.has(fd)) return void setImmediate(() => cb(fail(), 0));
    (real.write as (...a: unknown[]) => void)(fd, ...a, cb);
  };
  syncBuiltinESMExports();
}

afterEach(() => {
  Object.assign(fs, real);
  syncBuiltinESMExports();
  Object.assign(disk, { full: false, code: 'ENOSPC', short: false, opens: 0 });
  disk.fds.clear();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const ctx = { requestId: 'r', impId: '1', exchange: 'default', isApp: false, siteOrAppId: 's1', publisherId: 'p', domain: 'news.example', categories: ['IAB12'], deviceType: 2, os: '', country: 'US', region: '', hour: 12, format: 'banner', w: 300, h: 250, dealId: '', userKey: '', segments: [], userDataAllowed: false };
const bid = (bidId: string, ts: number): EventRecord => ({ type: 'bid', ts, bidId, campaignId: 'acme-shoes', creativeId: 'x', priceCpmUsd: 2, pctr: 0.01, modelVersion: 'm', ctx });
const win = (bidId: string, ts: number): EventRecord => ({ type: 'win', ts, bidId, campaignId: 'acme-shoes', creativeId: 'x', priceCpmUsd: 2 });
const turn = () => new Promise((r) => setImmediate(r));

function open(now: () => number) {
  const dir = fs.mkdtempSync(join(tmpdir(), 'eventlog-outage-'));
  dirs.push(dir);
  install();
  const seen = { errors: 0, drops: 0, failing: [] as string[], writable: 0 };
  const log = createEventLog({
    dir,
    rotateBytes: 1 << 20,
    keepBytes: 0,
    enabled: true,
    clock: now,
    onError: () => seen.errors++,
    onFailing: (err) => seen.failing.push(err.message),
    onWritable: () => seen.writable++,
    onDrop: () => seen.drops++,
  });
  return { dir, log, seen };
}

async function wins(dir: string): Promise<string[]> {
  const got: string[] = [];
  for await (const r of readEvents(eventFiles([dir]), () => {})) if (r.type === 'win') got.push(r.bidId);
  return got.sort();
}

describe('event log through a disk-full outage', () => {
  it('wins settled once space is back, within the 5 s wait before a new file: each in the log exactly once; bids wait without a syscall each', async () => {
    let now = Date.parse('2026-06-01T12:00:00Z');
    const { dir, log, seen } = open(() => now);
    log.append(bid('b0', now));
    log.append(win('w0', now));
    // b0's write ends before the disk fills (its success after w1's failure would say writable again).
    await new Promise((r) => setTimeout(r, 20));

    // The disk fills: the wins of w1..w5 fail (their notices are answered 503 by the ledger's own
    // failure on the same disk) and are not logged.
    disk.full = true;
    for (let i = 1; i <= 5; i++) {
      log.append(win(`w${i}`, now));
      now += 100;
    }
    // w5 came within the wait of w4's failure: held, and tried when that wait ends, the disk still full.
    await new Promise((r) => setTimeout(r, 300));
    const opens = disk.opens;
    for (let i = 0; i < 200; i++) log.append(bid(`full-${i}`, now));
    await turn();
    // Bid records during the wait are dropped without trying a new file.
    expect(disk.opens).toBe(opens);

    // Space is back 1 s later, the wait not over: the bidder's own retry settles w1..w5, and the
    // exchange's later retry of w1 is a duplicate to the ledger, which logs nothing.
    disk.full = false;
    now += 1000;
    for (let i = 1; i <= 5; i++) log.append(win(`w${i}`, now));
    log.append(bid('b-after', now));
    await turn();
    await log.close();

    expect(await wins(dir)).toEqual(['w0', 'w1', 'w2', 'w3', 'w4', 'w5']);
    // The files the failed tries made, empty, are gone: the first file and the one written since.
    expect(fs.readdirSync(dir).filter((f) => fs.statSync(join(dir, f)).size === 0)).toEqual([]);
    expect(fs.readdirSync(dir).length).toBe(2);
    // Said once when writes failed (errno and file), once when they worked again; each failure
    // counted: w1's; w2's in a new file 250 ms after it, opened by w4 (w2 and w3 came within the
    // wait, held: one try for w2, w3 and w4); w5's, held, at the end of the next wait.
    expect(seen.failing).toHaveLength(1);
    expect(seen.failing[0]).toMatch(/^cannot write the event log file .*events-.*\.ndjson: no space left on the disk \(ENOSPC\)$/);
    expect(seen.writable).toBe(1);
    expect(seen.errors).toBe(3);
    expect(seen.drops).toBe(205);
  });

  it('the failure is worded by errno: a file size limit (EFBIG) is not a full disk, nor is a write it cut short', async () => {
    let now = Date.parse('2026-06-01T12:00:00Z');
    const { log, seen } = open(() => now);
    disk.full = true;
    disk.code = 'EFBIG';
    log.append(win('w1', now));
    expect(seen.failing).toHaveLength(1);
    expect(seen.failing[0]).toMatch(/: the file reached the process's file size limit \(ulimit -f, EFBIG\)$/);
    disk.full = false;
    now += 6000;
    log.append(win('w2', now));
    expect(seen.writable).toBe(1);

    // A short write has no errno: with room on the disk, the size limit (or a quota) cut it.
    disk.full = true;
    disk.short = true;
    now += 1;
    log.append(win('w3-with-a-longer-id', now));
    expect(seen.failing).toHaveLength(2);
    expect(seen.failing[1]).toMatch(/cut short \(10 of \d+ bytes\): the file reached the process's file size limit \(ulimit -f\) or a disk quota$/);
    expect(seen.failing.join('\n')).not.toMatch(/disk is full/);
    disk.full = false;
    await log.close();
  });
});
