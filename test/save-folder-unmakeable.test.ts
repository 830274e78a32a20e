import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createLocalFrequencyStore } from '../src/freqcap/freqcap.js';
import { createLearnedStore } from '../src/pace/learned.js';
import { createShader } from '../src/pace/index.js';

/**
 * The caps file (freqcaps.json) and the learned state (learned.json) made their folder with
 * fs.mkdir's recursive mode, which in Node 20 retries forever on a thread-pool thread where mkdir
 * answers ENOENT with the parent there: under a pseudo-filesystem, or a relative path whose working
 * folder was deleted. A bidder whose working folder was deleted spun 73 % of a core for an hour,
 * a save that never ended. Now the folder is made a level at a time (src/util/dir.ts) and the save
 * fails with a warning. /proc's mkdir answers ENOENT that way; Linux only.
 */
const DIR = '/proc/self/bidder-save-test';

/** Settles `p` or says it is still pending after `ms`. */
const within = (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => 'settled', () => 'settled'), new Promise((r) => setTimeout(() => r('pending'), ms))]);

describe.skipIf(!existsSync('/proc/self'))('a save whose folder cannot be made', () => {
  it('of the frequency caps ends with a warning, not a save that never ends', async () => {
    const warnings: string[] = [];
    const store = createLocalFrequencyStore({ clock: () => Date.UTC(2026, 5, 1), path: `${DIR}/freqcaps.json`, logger: { warn: (_o: object, msg: string) => void warnings.push(msg) } });
    await store.record('user-1', 'c1');
    expect(await within(store.close(), 5_000)).toBe('settled');
    expect(warnings.join('\n')).toMatch(/frequency caps not saved/);
  });

  it('of the learned state ends with a warning, not a save that never ends', async () => {
    const warnings: string[] = [];
    const logger = { warn: (_o: object, msg: string) => void warnings.push(msg), info: () => {} } as never;
    const store = createLearnedStore({ path: `${DIR}/learned.json`, clock: () => Date.UTC(2026, 5, 1), logger, shader: createShader(), everyMs: 0 });
    expect(await within(store.close(), 5_000)).toBe('settled');
    expect(warnings.join('\n')).toMatch(/learned state not written/);
  });
});
