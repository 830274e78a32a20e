import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBidder, type AdminResult, type Bidder } from '../src/bidder.js';
import { TEST_SECRET, testClock } from './helpers/bidder.js';

/**
 * The undo of an admin action a peer refused reads the undo's results at the places of the peers
 * that took the action (BidderOptions.peers.apply keeps each worker's place, src/cli/workers.ts).
 * An undo answer missing at such a place was read as put back: with 3 workers, one gone between
 * the action and its undo shifted the others' answers (review r4), and a failed undo read as
 * success. The real bidder with fake peers whose answers the test scripts.
 */
const TOKEN = 'admin-undo-places-token-0123';

describe('the undo of an admin action a peer refused', () => {
  let dir: string;
  let b: Bidder;
  let answers: AdminResult[][] = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'admin-undo-places-'));
    cpSync('policies', join(dir, 'policies'), { recursive: true });
    b = await createBidder({
      policiesDir: join(dir, 'policies'),
      clock: testClock(),
      watchModels: false,
      workers: 3,
      peers: { apply: async () => answers.shift() ?? [{ ok: true }, { ok: true }], exclusive: (run) => run() },
      overrides: {
        host: '127.0.0.1', port: 0, logLevel: 'silent', noticeSecret: TEST_SECRET, adminToken: TOKEN, seed: 'test',
        eventLog: { dir: join(dir, 'events'), rotateBytes: 1 << 20, enabled: true },
        ledger: { journalPath: join(dir, 'ledger'), redisUrl: '' },
        ...(process.env.TEST_MODELS_DIR ? { modelsDir: process.env.TEST_MODELS_DIR } : {}),
      },
    });
  });
  afterAll(async () => {
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('names a peer that took the action and gave no answer to its undo as still holding it', async () => {
    // Peer 2 took the pause, peer 1 refused; the undo comes back with one answer only.
    answers = [[{ ok: false, problems: ['disk full'] }, { ok: true }], [{ ok: true }]];
    const r = await fetch(`${b.url}/admin/campaigns/acme-shoes/pause`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(409);
    const body = (await r.json()) as { problems: string[]; stillApplied?: string[] };
    // Before: no stillApplied, the pause read as put back on peer 2.
    expect(body.stillApplied).toEqual(['another worker (2 of 2)']);
    expect(body.problems).toEqual(['another worker (1 of 2): disk full', 'another worker (2 of 2), putting it back: no answer']);
  });
});
