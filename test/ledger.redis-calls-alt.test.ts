/**
 * The settle calls file where writes fail now and then (fix review fixrevg of 00fd7db): a disk
 * failing every other write, a rewrite refused (its .tmp cannot be created) while appends work, and
 * a disk with room for small appends only. 1,000 open calls, 1,000 settles a millisecond apart on
 * the file's clock: each had the file rewritten (or tried, with a warning) at every settle, 999 of
 * 1,000; a rewrite a second at most now.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { openCallLog } from '../src/ledger/redis-calls.js';

let alternate = false;
let n = 0;
let tmpFails = false;
let failOnce = false;
let bigFails = false;
let rewrites = 0;
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  return {
    ...real,
    openSync: (path: string, ...rest: unknown[]) => {
      if (String(path).endsWith('.tmp')) {
        rewrites++;
        if (tmpFails) throw Object.assign(new Error('EACCES: permission denied, open'), { code: 'EACCES' });
      }
      return (real.openSync as (...a: unknown[]) => number)(path, ...rest);
    },
    writeSync: (fd: number, data: string, ...rest: unknown[]) => {
      const len = typeof data === 'string' ? data.length : (data as Buffer).byteLength;
      if (failOnce && len > 0) { failOnce = false; throw Object.assign(new Error('EIO'), { code: 'EIO' }); }
      if (bigFails && len > 4096) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      if (alternate && len > 0 && n++ % 2 === 1) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      return (real.writeSync as (...a: unknown[]) => number)(fd, data, ...rest);
    },
  };
});
const tick = () => new Promise((r) => setImmediate(r));

describe('the settle calls file under intermittent write failures', () => {
  for (const mode of ['alternate', 'tmpFails', 'bigFails'] as const) {
    it(mode, async () => {
      let now = 1_000_000;
      const clock = vi.spyOn(performance, 'now').mockImplementation(() => now);
      const dir = mkdtempSync(join(tmpdir(), 'calls-alt-'));
      const warned: string[] = [];
      const log = openCallLog(dir, 'p1.', 3_600_000, { warn: (_o, m) => warned.push(m) });
      try {
        for (let i = 0; i < 1000; i++) log.sent(`p1.o${i}`, `bid${i}\n1`);
        await tick();
        if (mode === 'alternate') alternate = true;
        else if (mode === 'tmpFails') {
          failOnce = true;
          tmpFails = true;
        } else {
          failOnce = true;
          bigFails = true;
        }
        rewrites = 0;
        warned.length = 0;
        for (let i = 0; i < 1000; i++) {
          now += 1;
          log.sent(`p1.s${i}`, `bid${i}\n1`);
          log.answered(`p1.o${i}`);
          await tick();
        }
      } finally {
        alternate = false;
        tmpFails = false;
        bigFails = false;
        failOnce = false;
        log.close();
        clock.mockRestore();
        rmSync(dir, { recursive: true, force: true });
      }
      expect(rewrites).toBeLessThanOrEqual(2);
      expect(warned.filter((w) => w.includes('cannot rewrite')).length).toBeLessThanOrEqual(2);
    });
  }
});
