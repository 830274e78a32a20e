import { promises as fsp, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLocalFrequencyStore } from '../src/freqcap/index.js';

/**
 * freqcaps.json was one JSON.stringify of the whole store: 6.5 million users of three impressions
 * passed V8's longest string, the save threw RangeError at close and every cap was lost at the
 * restart. It is now written a chunk at a time, in the format restore has always read.
 */
describe('the local store saved at close', () => {
  afterEach(() => vi.restoreAllMocks());

  it('is written in pieces when its JSON passes the chunk size, and restores identically', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'freqcaps-save-'));
    const path = join(dir, 'freqcaps.json');
    const writes: string[] = [];
    const open = fsp.open.bind(fsp);
    vi.spyOn(fsp, 'open').mockImplementation(async (...args: Parameters<typeof fsp.open>) => {
      const handle: FileHandle = await open(...args);
      const write = handle.write.bind(handle) as (s: string) => Promise<unknown>;
      (handle as { write: unknown }).write = (s: string) => (writes.push(s), write(s));
      return handle;
    });
    try {
      const T0 = Date.UTC(2026, 0, 10, 12);
      let now = T0;
      const users = Array.from({ length: 40 }, (_, i) => `id:user-"${i}"\u00e9`);
      const a = createLocalFrequencyStore({ clock: () => now, path, saveChunkChars: 64 });
      for (const [i, u] of users.entries()) {
        for (let k = 0; k <= i % 3; k++) {
          await a.record(u, `c${(i + k) % 4}`);
          now += 1_000;
        }
      }
      const counts = (s: ReturnType<typeof createLocalFrequencyStore>) => users.map((u) => [0, 1, 2, 3].map((c) => s.count(u, `c${c}`, 86_400)));
      const before = counts(a);
      await a.close();
      expect(writes.length).toBeGreaterThan(10);
      expect(Math.max(...writes.map((w) => w.length))).toBeLessThan(64 + 100);
      const snap = JSON.parse(readFileSync(path, 'utf8'));
      expect(snap).toMatchObject({ version: 2, campaigns: ['c0', 'c1', 'c2', 'c3'] });
      expect(snap.users).toHaveLength(80);
      const b = createLocalFrequencyStore({ clock: () => now, path });
      expect(counts(b)).toEqual(before);
      expect(before.flat().reduce((x, y) => x + y)).toBe(79);
      await b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /**
   * Read back whole, a file past V8's longest string (about 512 MB: millions of users of several
   * impressions) could not be restored, and every cap started empty. It is one user a line, and
   * read a line at a time.
   */
  it('is one user a line, read back a line at a time across read chunks (multi-byte keys on the edges), and a file of the earlier one-line form still restores', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'freqcaps-lines-'));
    const path = join(dir, 'freqcaps.json');
    try {
      const now = Date.UTC(2026, 0, 10, 12);
      // Past one read chunk (1 MiB), keys of two- and three-byte characters.
      const users = Array.from({ length: 40_000 }, (_, i) => `e:pubcid.org:é€${i}`);
      const a = createLocalFrequencyStore({ clock: () => now, path });
      for (const u of users) await a.record(u, 'c0');
      await a.close();
      const text = readFileSync(path, 'utf8');
      expect(text.length).toBeGreaterThan(1 << 20);
      const lines = text.split('\n');
      expect(lines).toHaveLength(users.length + 2);
      expect(lines[1]).toBe(`${JSON.stringify(users[0])},[0,1,${now}],`);
      const b = createLocalFrequencyStore({ clock: () => now, path });
      expect(users.every((u) => b.count(u, 'c0', 60) === 1)).toBe(true);
      await b.close();
      // The earlier form: the same document on one line.
      writeFileSync(path, JSON.stringify(JSON.parse(text)));
      const c = createLocalFrequencyStore({ clock: () => now, path });
      expect(users.every((u) => c.count(u, 'c0', 60) === 1)).toBe(true);
      await c.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps the users before a damaged line, and says so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'freqcaps-damaged-'));
    const path = join(dir, 'freqcaps.json');
    try {
      const now = Date.UTC(2026, 0, 10, 12);
      const a = createLocalFrequencyStore({ clock: () => now, path });
      for (const u of ['u1', 'u2', 'u3']) await a.record(u, 'c0');
      await a.close();
      const lines = readFileSync(path, 'utf8').split('\n');
      lines[2] = '"u2",[0,1,';
      writeFileSync(path, lines.join('\n'));
      const warnings: string[] = [];
      const b = createLocalFrequencyStore({ clock: () => now, path, logger: { warn: (_o: object, msg: string) => void warnings.push(msg) } as never });
      expect(['u1', 'u2', 'u3'].map((u) => b.count(u, 'c0', 60))).toEqual([1, 0, 0]);
      expect(warnings).toEqual(['frequency caps file damaged: the users after the damage are not restored']);
      await b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an empty store saved and restored says nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'freqcaps-empty-'));
    const path = join(dir, 'freqcaps.json');
    try {
      const now = Date.UTC(2026, 0, 10, 12);
      await createLocalFrequencyStore({ clock: () => now, path }).close();
      const warnings: string[] = [];
      // Before: "frequency caps file is not a snapshot: caps start empty" at every restart.
      const b = createLocalFrequencyStore({ clock: () => now, path, logger: { warn: (_o: object, msg: string) => void warnings.push(msg) } as never });
      expect(warnings).toEqual([]);
      await b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
