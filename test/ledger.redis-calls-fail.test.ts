import * as fs from 'node:fs';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { openCallLog } from '../src/ledger/redis-calls.js';
import { createMetrics } from '../src/metrics/metrics.js';
import { metricSum } from '../src/harness/prometheus.js';

/**
 * The settle calls file (src/ledger/redis-calls.ts) when its writes fail (fix review disk): each
 * failed write, and each call unkept for want of the folder, is counted (bidder_ledger_errors_total
 * {op="calls"}, which BidderLedgerErrors pages on), where one warning was all; a file at a size
 * limit (ulimit -f: EFBIG) is rewritten with its open calls, where it stayed full and every write
 * failed for good; a short write's part of a line does not take the next line with it.
 * Injected through node:fs: `limit` is a file size limit as RLIMIT_FSIZE sets it (a write past it
 * writes what fits, the next fails EFBIG); `shortOnce` cuts the next write in half.
 */
let limit: number | null = null;
let shortOnce = false;
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  return {
    ...real,
    writeSync: (fd: number, data: string | NodeJS.ArrayBufferView, ...rest: unknown[]) => {
      if (typeof data !== 'string' || (limit === null && !shortOnce)) return (real.writeSync as (...a: unknown[]) => number)(fd, data, ...rest);
      const buf = Buffer.from(data);
      let n = buf.length;
      if (shortOnce) {
        shortOnce = false;
        n = Math.floor(n / 2);
      }
      if (limit !== null) {
        const room = limit - real.fstatSync(fd).size;
        if (room <= 0) throw Object.assign(new Error('EFBIG: file too large, write'), { code: 'EFBIG' });
        n = Math.min(n, room);
      }
      return real.writeSync(fd, buf, 0, n);
    },
  };
});

/** The open calls of a call file as the next start reads it (redis-calls.ts openCalls). */
function openInFile(dir: string): string[] {
  const [name] = readdirSync(join(dir, 'redis-calls')).filter((f) => f.endsWith('.calls'));
  const open = new Set<string>();
  for (const line of readFileSync(join(dir, 'redis-calls', name), 'utf8').split('\n')) {
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      continue;
    }
    if (Array.isArray(v)) open.add(v[0] as string);
    else if (typeof v === 'string') open.delete(v);
  }
  return [...open].sort();
}

const tick = () => new Promise((r) => setImmediate(r));
const HOUR = 3_600_000;

describe('settle calls file: failed writes', () => {
  const dirs: string[] = [];
  const folder = () => {
    const d = mkdtempSync(join(tmpdir(), 'redis-calls-fail-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    limit = null;
    shortOnce = false;
  });
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('at a file size limit (EFBIG) the file is rewritten with its open calls and kept again; each failed write counted', async () => {
    const dir = folder();
    const warned: string[] = [];
    const writes = { ok: 0, failed: 0 };
    const log = openCallLog(dir, 'p1.', HOUR, { warn: (_o, m) => warned.push(m) }, undefined, (_s, failed) => (failed ? writes.failed++ : writes.ok++));
    limit = 600;
    // Calls 0-2 and the last stay open (their replies lost); the others are answered.
    for (let i = 0; i < 40; i++) {
      log.sent(`p1.${i}`, `bid${i}\n1`);
      if (i > 2 && i < 39) log.answered(`p1.${i}`);
      await tick();
    }
    expect(writes.failed).toBeGreaterThan(0);
    // The last call is in the file: the next start would claim it.
    expect(openInFile(dir)).toEqual(['p1.0', 'p1.1', 'p1.2', 'p1.39']);
    expect(warned.filter((w) => w.includes('cannot write the settle calls file'))).toHaveLength(1);
    log.close();
  });

  it("a short write's part of a line leaves the next call's line readable", async () => {
    const dir = folder();
    const log = openCallLog(dir, 'p2.', HOUR, { warn: () => {} });
    log.sent('p2.a', 'bidA\n1');
    shortOnce = true;
    log.sent('p2.b', 'bidB\n1');
    log.sent('p2.c', 'bidC\n1');
    await tick();
    expect(openInFile(dir)).toEqual(['p2.a', 'p2.b', 'p2.c']);
    log.close();
  });

  it('a data folder where the calls cannot be kept counts every call unkept as a failed write (bidder_ledger_errors_total{op="calls"})', async () => {
    const dir = folder();
    // A file where the folder should be.
    writeFileSync(join(dir, 'redis-calls'), '');
    const metrics = createMetrics({ exchanges: [], campaigns: [], defaults: false });
    const log = openCallLog(dir, 'p3.', HOUR, { warn: () => {} }, undefined, (s, failed) => metrics.ledger('calls', s, failed));
    for (let i = 0; i < 3; i++) log.sent(`p3.${i}`, `bid${i}\n1`);
    log.close();
    const text = await metrics.registry.metrics();
    expect(metricSum(text, 'bidder_ledger_errors_total', { op: 'calls' })).toBe(3);
    expect(metricSum(text, 'bidder_ledger_duration_seconds_count', { op: 'calls' })).toBe(3);
  });
});
