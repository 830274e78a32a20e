import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/**
 * The secret kept in the journal folder (src/crypto/secret.ts) makes its folder like every other
 * folder the bidder writes (src/util/dir.ts): a recursive mkdirSync under /proc spins forever on
 * Node 20, so a bidder given a journal folder there hung at start, SIGTERM unheard. Run in a child
 * (the built module), killed at the timeout, since the spin holds its thread.
 */
describe('storedSecret', () => {
  it('under /proc throws ENOENT at once instead of hanging', () => {
    const file = `/proc/notice-secret-test-${process.pid}/ledger/notice-secret`;
    const script = `import { storedSecret } from './dist/crypto/secret.js';
try { storedSecret(${JSON.stringify(file)}); console.log('made'); } catch (err) { console.log(err.code); }`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
    expect(run.signal, 'still spinning at the timeout').toBeNull();
    expect(run.stdout.trim()).toBe('ENOENT');
  }, 30_000);
});
