import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { expect, it } from 'vitest';
import { createBidder } from '../src/bidder.js';
import { TEST_SECRET } from './helpers/bidder.js';

/**
 * The bidder reads models/CURRENT as it starts and watches it once it listens: a change between the
 * two (the model loaded, then the ledger, the event log, the listening socket) was seen by no poll
 * and stayed unloaded until CURRENT changed again (fix review fixrev5, as under serve --workers).
 * The real bidder with its watch on; CURRENT is rewritten as its first model is logged loaded.
 */
it('loads a models/CURRENT change made while the bidder starts', async () => {
  const models = mkdtempSync(join(tmpdir(), 'watch-start-models-'));
  const dir = mkdtempSync(join(tmpdir(), 'watch-start-run-'));
  for (const v of ['lr-v3', 'lr-v2']) cpSync(join('models', v), join(models, v), { recursive: true });
  writeFileSync(join(models, 'CURRENT'), 'lr-v3\n');
  const lines: { msg: string; version?: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) {
        if (!l) continue;
        const line = JSON.parse(l) as { msg: string; version?: string };
        lines.push(line);
        if (line.msg === 'model loaded' && line.version === 'lr-v3') writeFileSync(join(models, 'CURRENT'), 'lr-v2\n');
      }
      done();
    },
  });
  const bidder = await createBidder({
    policiesDir: 'policies',
    logger: pino({ level: 'info' }, stream),
    overrides: {
      host: '127.0.0.1', port: 0, noticeSecret: TEST_SECRET, seed: 'test', modelsDir: models,
      eventLog: { dir: join(dir, 'events'), rotateBytes: 1 << 20, enabled: true },
      ledger: { journalPath: join(dir, 'ledger'), redisUrl: '' },
    },
  });
  try {
    expect(lines.some((l) => l.msg === 'model loaded' && l.version === 'lr-v3')).toBe(true);
    while (!lines.some((l) => l.msg === 'model loaded' && l.version === 'lr-v2')) await new Promise((r) => setTimeout(r, 100));
    expect(((await (await fetch(`${bidder.url}/readyz`)).json()) as { model: string }).model).toBe('lr-v2');
  } finally {
    await bidder.close();
    rmSync(models, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}, 30000);
