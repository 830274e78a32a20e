import { spawn } from 'node:child_process';
import fs, { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../src/harness/process.js';
import { startBidder } from './helpers/bidder.js';
import { policiesIn } from './helpers/policies-dir.js';

/**
 * A first start with no noticeSecret whose `notice-secret` cannot be written (a full disk: the
 * folder probe passes, the write fails ENOSPC) served with a random secret kept nowhere: after a
 * restart every win notice of its bids was refused 403 NOTICE_BAD_SIGNATURE (3 billed wins lost in
 * the review's run). The start is refused instead, naming the file and the error. The write fails
 * by injection: the file's writes answer ENOSPC.
 */
const ENOSPC = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });

// The same injection for a child process, loaded with --import before the CLI.
const PRELOAD = `import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
const open = fs.openSync, write = fs.writeSync, fds = new Set();
fs.openSync = (p, ...a) => { const fd = open(p, ...a); if (String(p).endsWith('notice-secret.tmp')) fds.add(fd); return fd; };
fs.writeSync = (fd, ...a) => { if (fds.has(fd)) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' }); return write(fd, ...a); };
syncBuiltinESMExports();
`;

describe('a notice secret that cannot be kept', () => {
  let dir: string;
  let savedSecret: string | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'start-secret-'));
    savedSecret = process.env.NOTICE_SECRET;
    delete process.env.NOTICE_SECRET;
  });
  afterEach(() => {
    if (savedSecret !== undefined) process.env.NOTICE_SECRET = savedSecret;
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops createBidder before anything is signed, naming the file and the error', async () => {
    const open = fs.openSync;
    const write = fs.writeSync;
    const fds = new Set<number>();
    fs.openSync = ((p: fs.PathLike, ...a: unknown[]) => {
      const fd = (open as (...x: unknown[]) => number)(p, ...a);
      if (String(p).endsWith('notice-secret.tmp')) fds.add(fd);
      return fd;
    }) as typeof fs.openSync;
    fs.writeSync = ((fd: number, ...a: unknown[]) => {
      if (fds.has(fd)) throw ENOSPC();
      return (write as (...x: unknown[]) => number)(fd, ...a);
    }) as typeof fs.writeSync;
    syncBuiltinESMExports();
    const journal = join(dir, 'ledger');
    try {
      // Before: it started, signing with a random secret that the next start no longer had.
      await expect(startBidder({ noticeSecret: '', ledger: { journalPath: journal, redisUrl: '' } as never })).rejects.toThrow(
        new RegExp(`${join(journal, 'notice-secret').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(ENOSPC: no space left on device, write\\)`),
      );
    } finally {
      fs.openSync = open;
      fs.writeSync = write;
      syncBuiltinESMExports();
    }
    expect(existsSync(join(journal, 'notice-secret'))).toBe(false);
    // Before: a 0-byte notice-secret.tmp stayed behind.
    expect(existsSync(join(journal, 'notice-secret.tmp'))).toBe(false);
  });

  for (const workers of [1, 2]) {
    it(`stops serve${workers > 1 ? ' --workers 2' : ''} with one line and a non-zero exit`, async () => {
      const preload = join(dir, 'enospc.mjs');
      writeFileSync(preload, PRELOAD);
      const policies = policiesIn(dir);
      const env: NodeJS.ProcessEnv = { ...process.env };
      delete env.NOTICE_SECRET;
      delete env.REDIS_URL;
      // No Redis is reached: the secret is made before the workers start.
      const fleet = workers > 1 ? ['--workers', '2', '--redis', 'redis://127.0.0.1:1'] : [];
      const child = spawn(process.execPath, ['--import', preload, 'dist/cli.js', 'serve', '--policies', policies, '--host', '127.0.0.1', '--port', String(await freePort()), '--log-level', 'warn', ...fleet], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        // Started (as before the fix): stopped, so the assertions below say so.
        if (/listening/.test(stderr)) child.kill('SIGTERM');
      });
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      const file = join(dir, 'ledger', 'notice-secret');
      const said = stderr.split('\n').filter((l) => l.includes(file));
      expect(said).toHaveLength(1);
      expect(said[0]).toMatch(/^bidder: cannot start: .*\(ENOSPC: no space left on device, write\).*NOTICE_SECRET/);
      expect(stderr).not.toMatch(/listening|random one/);
      expect(code).toBe(1);
      expect(existsSync(file)).toBe(false);
    });
  }
});

/**
 * Runs `fn` with fs.fsyncSync replaced by `onSync(path of the fd, the real fsync)`: the paths of the
 * fds opened meanwhile are known to it.
 */
function withSyncs<T>(onSync: (path: string, sync: () => void) => void, fn: () => T): T {
  const open = fs.openSync;
  const fsync = fs.fsyncSync;
  const paths = new Map<number, string>();
  fs.openSync = ((p: fs.PathLike, ...a: unknown[]) => {
    const fd = (open as (...x: unknown[]) => number)(p, ...a);
    paths.set(fd, String(p));
    return fd;
  }) as typeof fs.openSync;
  fs.fsyncSync = ((fd: number) => onSync(paths.get(fd) ?? '?', () => fsync(fd))) as typeof fs.fsyncSync;
  syncBuiltinESMExports();
  try {
    return fn();
  } finally {
    fs.openSync = open;
    fs.fsyncSync = fsync;
    syncBuiltinESMExports();
  }
}

describe('a generated notice secret', () => {
  it('is synced with the folder that names it before anything is signed with it', async () => {
    const { storedSecret } = await import('../src/crypto/secret.js');
    const dir = mkdtempSync(join(tmpdir(), 'secret-sync-'));
    const synced: string[] = [];
    const made = withSyncs(
      (path, sync) => {
        synced.push(path);
        sync();
      },
      () => storedSecret(join(dir, 'notice-secret')),
    );
    rmSync(dir, { recursive: true, force: true });
    expect(made.created).toBe(true);
    // Before: the file only; a power cut soon after could lose the rename, and the next start sign
    // with a new secret that refuses every notice of this one's bids.
    expect(synced).toEqual([join(dir, 'notice-secret.tmp'), dir]);
  });
});

describe('a folder whose filesystem refuses a folder fsync (some FUSE and network ones)', () => {
  it('still keeps the generated secret: the file is in place, the folder sync is best effort', async () => {
    const { storedSecret } = await import('../src/crypto/secret.js');
    const dir = mkdtempSync(join(tmpdir(), 'secret-einval-'));
    const made = withSyncs(
      (path, sync) => {
        if (path === dir) throw Object.assign(new Error('EINVAL: invalid argument, fsync'), { code: 'EINVAL' });
        sync();
      },
      () => storedSecret(join(dir, 'notice-secret')),
    );
    // Before: the first start was refused ("cannot be kept ... EINVAL"), the secret already in place.
    expect(made.created).toBe(true);
    expect(storedSecret(join(dir, 'notice-secret')).created).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  });
});
