import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SecretFileError, storedSecret } from '../src/crypto/secret.js';

/**
 * The secret kept in the journal folder (`notice-secret`) when none is configured. A damaged one
 * was replaced at the next start without a word (at info, `created: true`), and every notice of
 * the bids signed with it was then refused (403, billed and never recorded); a `.tmp` left at 0644
 * by a crash between write and rename kept its mode, and the secret was world-readable.
 */
describe('the kept notice secret', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'notice-secret-'));
    file = join(dir, 'ledger', 'notice-secret');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is generated once, mode 0600, and read back unchanged', () => {
    const first = storedSecret(file);
    expect(first.created).toBe(true);
    expect(first.secret.length).toBeGreaterThanOrEqual(16);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(storedSecret(file)).toEqual({ secret: first.secret, created: false });
  });

  it('a damaged file (short, empty) stops the start and is left as it is', () => {
    storedSecret(file);
    for (const damaged of ['short\n', '', '\n']) {
      writeFileSync(file, damaged);
      // Before: a new secret was written over it and the start went on.
      expect(() => storedSecret(file)).toThrow(SecretFileError);
      expect(() => storedSecret(file)).toThrow(/is damaged \(\d+ characters, 16 or more expected\)/);
      expect(readFileSync(file, 'utf8')).toBe(damaged);
    }
  });

  it('one that cannot be read stops the start, naming why', () => {
    // A folder where the file should be: opened, its read fails (EISDIR). (Tests run as root,
    // which a mode 000 file does not stop.)
    mkdirSync(file, { recursive: true });
    expect(() => storedSecret(file)).toThrow(SecretFileError);
    expect(() => storedSecret(file)).toThrow(/cannot be read \(EISDIR\)/);
    expect(statSync(file).isDirectory()).toBe(true);
  });

  it('a .tmp left world-readable by a crash does not make the secret world-readable', () => {
    mkdirSync(join(dir, 'ledger'));
    writeFileSync(`${file}.tmp`, 'half-written', { mode: 0o644 });
    chmodSync(`${file}.tmp`, 0o644);
    const { secret, created } = storedSecret(file);
    expect(created).toBe(true);
    // Before: 0644, the mode of the leftover file it wrote into.
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toBe(`${secret}\n`);
  });

  it('a kept file other users can read is used, with a warning to log', () => {
    const { secret } = storedSecret(file);
    chmodSync(file, 0o644);
    const read = storedSecret(file);
    expect(read.secret).toBe(secret);
    expect(read.warning).toMatch(/can be read or written by other users \(mode 0644\).*chmod 600/);
    chmodSync(file, 0o600);
    expect(storedSecret(file).warning).toBeUndefined();
  });
});
