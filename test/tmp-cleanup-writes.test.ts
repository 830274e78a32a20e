import { spawnSync } from 'node:child_process';
import fs, { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pausedFile, ratesFile, retiredFile } from '../src/live/live.js';

/**
 * A write that failed (a full disk: ENOSPC) left its temporary file behind, where the next one's
 * name differs (pid, thread): `rates.json.<pid>.0.tmp`, `paused.json.<pid>.<tid>.tmp`,
 * `models/.<version>.tmp-<pid>/`, each taking the space a restart needs; and `bidder train` said
 * only `bidder: ENOSPC: no space left on device, write`, no path. The failure is injected: the
 * write creates the file, then fails ENOSPC, as a disk that fills mid-write.
 */
const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });

// The same injection for a child process, loaded with --import: the model's weights do not fit.
const PRELOAD = `import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
const write = fs.writeFileSync;
fs.writeFileSync = (p, ...a) => {
  if (String(p).endsWith('weights.bin')) { write(p, 'half'); throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' }); }
  return write(p, ...a);
};
syncBuiltinESMExports();
`;

describe('a write that fails', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'tmp-cleanup-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs `write` with every writeFileSync of a .tmp file failing ENOSPC after creating it. */
  function full(write: () => void): unknown {
    const real = fs.writeFileSync;
    fs.writeFileSync = ((p: fs.PathOrFileDescriptor, ...a: unknown[]) => {
      if (String(p).endsWith('.tmp')) {
        real(p, '{"half');
        throw enospc();
      }
      return (real as (...x: unknown[]) => void)(p, ...a);
    }) as typeof fs.writeFileSync;
    syncBuiltinESMExports();
    try {
      write();
    } catch (err) {
      return err;
    } finally {
      fs.writeFileSync = real;
      syncBuiltinESMExports();
    }
    return undefined;
  }

  const files: Array<[string, (path: string) => void]> = [
    ['rates.json', (p) => ratesFile(p).write(new Map([['USD', 1]]))],
    ['paused.json', (p) => pausedFile(p).write(['c1'])],
    ['retired.json', (p) => retiredFile(p).write(new Map([['cr1', { url: 'https://example.com', atMs: 1 }]]))],
  ];
  for (const [name, write] of files) {
    it(`of ${name} leaves no temporary file and names the file`, () => {
      const path = join(dir, name);
      writeFileSync(path, 'kept\n');
      const err = full(() => write(path)) as NodeJS.ErrnoException;
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toContain(path);
      expect(err.message).toContain('ENOSPC');
      expect(err.code).toBe('ENOSPC');
      // Before: name.<pid>.<thread>.tmp stayed.
      expect(readdirSync(dir)).toEqual([name]);
      expect(fs.readFileSync(path, 'utf8')).toBe('kept\n');
    });
  }

  it('of bidder train\'s model leaves no temporary folder and names the file', () => {
    const models = join(dir, 'models');
    fs.cpSync('models/lr-v2', join(models, 'lr-v2'), { recursive: true });
    writeFileSync(join(models, 'CURRENT'), 'lr-v2\n');
    const preload = join(dir, 'enospc.mjs');
    writeFileSync(preload, PRELOAD);
    const run = spawnSync(process.execPath, ['--import', preload, 'dist/cli.js', 'train', '--model', 'lr', '--rows', '30000', '--epochs', '1', '--version', 'lr-full', '--models', models], { encoding: 'utf8', timeout: 120_000 });
    expect(run.status).toBe(1);
    const said = run.stderr.trim().split('\n').pop()!;
    // Before: "bidder: ENOSPC: no space left on device, write".
    expect(said).toMatch(/^bidder: .*lr-full.*weights\.bin.*ENOSPC: no space left on device, write/);
    expect(readdirSync(models).sort()).toEqual(['CURRENT', 'lr-v2']);
  });
});
