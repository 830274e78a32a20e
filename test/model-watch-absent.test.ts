import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBidder } from '../src/bidder.js';

/** models/CURRENT written after the start of a bidder started with --model on a folder without one. */
describe('a models/CURRENT that appears after the start', () => {
  let models: string;
  let dir: string;
  beforeAll(() => {
    models = mkdtempSync(join(tmpdir(), 'watch-absent-'));
    dir = mkdtempSync(join(tmpdir(), 'watch-absent-run-'));
    for (const v of ['lr-v3', 'lr-v2']) cpSync(join('models', v), join(models, v), { recursive: true });
  });
  afterAll(() => {
    rmSync(models, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('is loaded, as a change of one present at the start is', async () => {
    const bidder = await createBidder({
      policiesDir: 'policies',
      overrides: {
        host: '127.0.0.1',
        port: 0,
        logLevel: 'silent',
        noticeSecret: 'test-notice-secret-0123456789',
        modelsDir: models,
        modelVersion: 'lr-v3',
        eventLog: { dir: join(dir, 'events'), rotateBytes: 1 << 20, enabled: true },
        ledger: { journalPath: join(dir, 'ledger'), redisUrl: '' },
      },
    });
    try {
      const serving = async () => ((await (await fetch(`${bidder.url}/readyz`)).json()) as { model: string }).model;
      expect(await serving()).toBe('lr-v3');
      // No CURRENT is no change: the watch's first call loaded the missing file at every such start
      // (a refused swap, BidderModelRefused; fix review fixrev8). Past a poll, none was tried.
      await new Promise((r) => setTimeout(r, 2500));
      expect(await bidder.metricsText()).toMatch(/^bidder_model_swaps_total\{result="refused"\} 0$/m);
      writeFileSync(join(models, 'CURRENT'), 'lr-v2\n');
      // The watch polls every 2 s: wait for the swap, however long the machine takes.
      while ((await serving()) !== 'lr-v2') await new Promise((r) => setTimeout(r, 200));
      expect(await serving()).toBe('lr-v2');
    } finally {
      await bidder.close();
    }
  });
});
