import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { selectBackend } from '../src/model/backend.js';
import { loadModel, ModelLoadError, readModelVersion } from '../src/model/store.js';

/**
 * A version file that stats as a plain file but cannot be read (mode 000 under a non-root user:
 * EACCES on open). These tests run as root, which reads mode 000, so the reads of the paths in
 * `deny` fail here as they would there, on both the asynchronous reader (serve, reloads) and the
 * synchronous one (train, eval).
 */
const deny = vi.hoisted(() => new Set<string>());
const eacces = (path: unknown) => Object.assign(new Error(`EACCES: permission denied, open '${String(path)}'`), { code: 'EACCES', errno: -13, syscall: 'open', path: String(path) });

vi.mock('node:fs/promises', async (importOriginal) => {
  const fsp = await importOriginal<typeof import('node:fs/promises')>();
  const readFile = ((path: Parameters<typeof fsp.readFile>[0], ...rest: unknown[]) =>
    deny.has(String(path)) ? Promise.reject(eacces(path)) : (fsp.readFile as (...a: unknown[]) => unknown)(path, ...rest)) as typeof fsp.readFile;
  return { ...fsp, readFile, default: { ...fsp, readFile } };
});
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const readFileSync = ((path: Parameters<typeof fs.readFileSync>[0], ...rest: unknown[]) => {
    if (deny.has(String(path))) throw eacces(path);
    return (fs.readFileSync as (...a: unknown[]) => unknown)(path, ...rest);
  }) as typeof fs.readFileSync;
  return { ...fs, readFileSync, default: { ...fs, readFileSync } };
});

let models: string;
beforeAll(async () => {
  await selectBackend('wasm');
  models = mkdtempSync(join(tmpdir(), 'model-unreadable-'));
});
afterAll(() => rmSync(models, { recursive: true, force: true }));
afterEach(() => deny.clear());

/** A copy of lr-v3 named `name`, built for another feature spec, with `file` unreadable. */
function unreadable(name: string, file: string): string {
  const dir = join(models, name);
  cpSync('models/lr-v3', dir, { recursive: true });
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
  writeFileSync(join(dir, 'meta.json'), JSON.stringify({ ...meta, version: name, featureSpecHash: '0000000000000000' }));
  deny.add(join(dir, file));
  return dir;
}

async function problemsOf(load: () => unknown): Promise<string[]> {
  const err = await Promise.resolve()
    .then(load)
    .then(
      () => null,
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(ModelLoadError);
  return (err as ModelLoadError).problems;
}

describe('a version file that cannot be read', () => {
  for (const file of ['weights.bin', 'model.json']) {
    it(`${file}: named with the system's reason among the other problems, by loadModel and readModelVersion alike`, async () => {
      const dir = unreadable(`no-read-${file.replace('.', '-')}`, file);
      for (const load of [() => loadModel(dir), () => readModelVersion(dir)]) {
        const problems = await problemsOf(load);
        expect(problems).toContain(`${file} cannot be read: EACCES: permission denied, open '${join(dir, file)}'`);
        expect(problems.some((p) => p.includes('was built for feature spec 0000000000000000'))).toBe(true);
      }
    });
  }

  it('meta.json: named, and the files that can be read are still checked', async () => {
    const dir = unreadable('no-read-meta', 'meta.json');
    writeFileSync(join(dir, 'weights.bin'), Buffer.alloc(8));
    for (const load of [() => loadModel(dir), () => readModelVersion(dir)]) {
      const problems = await problemsOf(load);
      expect(problems).toContain(`meta.json cannot be read: EACCES: permission denied, open '${join(dir, 'meta.json')}'`);
      expect(problems.some((p) => p.startsWith('weights.bin has 8 bytes'))).toBe(true);
    }
  });
});
