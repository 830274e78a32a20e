import { cpSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBidder, type Bidder } from '../src/bidder.js';
import { TEST_SECRET } from './helpers/bidder.js';

/**
 * Review "reload": `echo dcn-v2 > models/CURRENT`, 0.2 s later `POST /admin/reload/model
 * {"version":"lr-v5"}` answered 200 lr-v5, and 0.7 s later the watch's poll swapped to dcn-v2:
 * the file's change, older than the admin reload, was applied after it and outside the admin
 * actions' order (models/README.md: the last one asked is left serving). The real bidder with its
 * models/CURRENT watch on, on a models folder of its own.
 */
const TOKEN = 'model-watch-order-token-0123';

type Line = { msg: string; version?: string };

describe('a models/CURRENT change and an admin model reload asked after it', () => {
  let models: string;
  let dir: string;
  let bidder: Bidder;
  const lines: Line[] = [];
  const reload = (version: string) =>
    fetch(`${bidder.url}/admin/reload/model`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ version }) });
  const serving = async () => ((await (await fetch(`${bidder.url}/readyz`)).json()) as { model: string }).model;
  /** Until a line the watch wrote for its poll: the change skipped, or the version it loaded. */
  const watchSeen = async (): Promise<Line> => {
    for (;;) {
      const seen = lines.find((l) => l.msg.startsWith('models/CURRENT changed before') || (l.msg === 'model loaded' && l.version === 'lr-v2'));
      if (seen) return seen;
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  beforeEach(async () => {
    lines.length = 0;
    models = mkdtempSync(join(tmpdir(), 'watch-order-models-'));
    dir = mkdtempSync(join(tmpdir(), 'watch-order-run-'));
    for (const v of ['lr-v3', 'lr-v2']) cpSync(join('models', v), join(models, v), { recursive: true });
    writeFileSync(join(models, 'CURRENT'), 'lr-v3\n');
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Line);
        done();
      },
    });
    bidder = await createBidder({
      policiesDir: 'policies',
      logger: pino({ level: 'info' }, stream),
      overrides: {
        host: '127.0.0.1', port: 0, noticeSecret: TEST_SECRET, adminToken: TOKEN, seed: 'test', modelsDir: models,
        eventLog: { dir: join(dir, 'events'), rotateBytes: 1 << 20, enabled: true },
        ledger: { journalPath: join(dir, 'ledger'), redisUrl: '' },
      },
    });
  });
  afterEach(async () => {
    await bidder.close();
    rmSync(models, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('leaves the admin reload\'s model serving: the last one asked', async () => {
    expect(await serving()).toBe('lr-v3');
    // Written once the reload has answered and dated before it was asked, so the watch's poll
    // cannot come between the two: a change it sees only after the admin reload, as on review.
    const asked = Date.now();
    const r = await reload('lr-v3');
    expect(r.status).toBe(200);
    expect(((await r.json()) as { version: string }).version).toBe('lr-v3');
    writeFileSync(join(models, 'CURRENT'), 'lr-v2\n');
    utimesSync(join(models, 'CURRENT'), new Date(asked - 10), new Date(asked - 10));
    // The watch polls every 2 s: its turn comes, however long the machine takes.
    const seen = await watchSeen();
    expect(seen.msg).toBe('models/CURRENT changed before the latest model reload was asked: the model that reload left serving stays');
    expect(await serving()).toBe('lr-v3');
  }, 30000);

  it('loads a change written after the admin reload', async () => {
    expect((await reload('lr-v3')).status).toBe(200);
    // Dated as written, after the answer: the file's own time is up to a kernel tick behind.
    const written = new Date();
    writeFileSync(join(models, 'CURRENT'), 'lr-v2\n');
    utimesSync(join(models, 'CURRENT'), written, written);
    const seen = await watchSeen();
    expect(seen.msg).toBe('model loaded');
    expect(await serving()).toBe('lr-v2');
  }, 30000);
});
