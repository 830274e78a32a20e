import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createBidder, type AdminAction, type AdminResult, type Bidder } from '../src/bidder.js';
import { TEST_SECRET, testClock } from './helpers/bidder.js';

/**
 * Under `serve --workers N` the worker an admin request reaches applies it, then has the others
 * apply it (BidderOptions.peers). A peer's refusal used to leave the workers split: the pause kept
 * on the first worker and answered 404 "no such route", a reload or model kept on the first worker
 * while the answer said the running ones stay. Now the workers that took the action are put back
 * and the answer is a 409 that says so, or names the workers left holding it. The real bidder with
 * fake peers, whose answers each test scripts.
 */
const TOKEN = 'admin-fanout-token-0123';
const auth = { authorization: `Bearer ${TOKEN}` };
const refused = (why: string): AdminResult => ({ ok: false, problems: [why] });

describe('an admin action a peer worker refuses', () => {
  let dir: string;
  let policiesDir: string;
  let b: Bidder;
  /** What the fake peers were told, in order; `answers` scripts each fan-out (default: both peers take it). */
  let told: AdminAction[];
  let answers: AdminResult[][];
  const admin = (path: string, body = '') => fetch(`${b.url}${path}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body });
  const status = async () => (await (await fetch(`${b.url}/admin/status`, { headers: auth })).json()) as { campaigns: string[]; paused: string[]; model: string };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'admin-fanout-'));
    policiesDir = join(dir, 'policies');
    cpSync('policies', policiesDir, { recursive: true });
    b = await createBidder({
      policiesDir,
      clock: testClock(),
      watchModels: false,
      workers: 3,
      peers: {
        async apply(action) {
          told.push(action);
          return answers.shift() ?? [{ ok: true }, { ok: true }];
        },
        exclusive: (run) => run(),
      },
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
  beforeEach(() => {
    told = [];
    answers = [];
  });

  it('a pause: 409 with the peer\'s problem, undone here and on the peer that took it', async () => {
    answers = [[{ ok: true }, refused('paused.json cannot be written')]];
    const r = await admin('/admin/campaigns/acme-shoes/pause');
    expect(r.status).toBe(409);
    const body = (await r.json()) as { error: string; reason: string; problems: string[] };
    expect(body.error).toBe('ADMIN_FAILED');
    expect(body.problems).toEqual(['another worker (2 of 2): paused.json cannot be written']);
    expect(body.reason).toMatch(/^campaign acme-shoes not paused \(nothing changed\): another worker \(2 of 2\): paused.json cannot be written$/);
    expect((await status()).paused).toEqual([]);
    expect(JSON.parse(readFileSync(join(dir, 'ledger', 'paused.json'), 'utf8'))).toEqual({ paused: [] });
    expect(told).toEqual([
      { kind: 'pause', campaignId: 'acme-shoes', paused: true },
      { kind: 'pause', campaignId: 'acme-shoes', paused: false },
    ]);
  });

  it('a resume: 409, and the campaign stays paused here and on the peer that took it', async () => {
    expect((await admin('/admin/campaigns/acme-shoes/pause')).status).toBe(200);
    answers = [[refused('no'), { ok: true }]];
    const r = await admin('/admin/campaigns/acme-shoes/resume');
    expect(r.status).toBe(409);
    expect((await status()).paused).toEqual(['acme-shoes']);
    expect(told.slice(1)).toEqual([
      { kind: 'pause', campaignId: 'acme-shoes', paused: false },
      { kind: 'pause', campaignId: 'acme-shoes', paused: true },
    ]);
    answers = [];
    expect((await admin('/admin/campaigns/acme-shoes/resume')).status).toBe(200);
    expect((await status()).paused).toEqual([]);
  });

  it('a pause whose undo a peer refuses too: the answer names the worker left paused', async () => {
    answers = [[{ ok: true }, refused('disk full')], [refused('disk still full'), { ok: true }]];
    const r = await admin('/admin/campaigns/volt-bank/pause');
    expect(r.status).toBe(409);
    const body = (await r.json()) as { reason: string; problems: string[]; stillApplied: string[] };
    expect(body.stillApplied).toEqual(['another worker (1 of 2)']);
    expect(body.reason).toMatch(/^campaign volt-bank paused on another worker \(1 of 2\) only/);
    expect(body.problems).toEqual(['another worker (2 of 2): disk full', 'another worker (1 of 2), putting it back: disk still full']);
    expect((await status()).paused).toEqual([]);
  });

  it('a policy reload: swapped back here and on the peer that took it; the answer says the running policies stay', async () => {
    const before = (await status()).campaigns;
    const file = join(policiesDir, 'campaigns.yaml');
    const good = readFileSync(file, 'utf8');
    // Without volt-bank.
    writeFileSync(file, good.replace('- id: volt-bank', '- id: volt-bank-2'));
    try {
      answers = [[{ ok: true }, refused('ledger unavailable')]];
      const r = await admin('/admin/reload/policies');
      expect(r.status).toBe(409);
      const body = (await r.json()) as { reason: string; problems: string[] };
      expect(body.reason).toBe('policies refused; the running policies stay');
      expect(body.problems).toEqual(['another worker (2 of 2): ledger unavailable']);
      expect((await status()).campaigns).toEqual(before);
      expect(told.map((a) => a.kind === 'reloadPolicies' && a.policies.campaigns.map((c) => c.id))).toEqual([
        before.map((id) => (id === 'volt-bank' ? 'volt-bank-2' : id)),
        before,
      ]);
    } finally {
      writeFileSync(file, good);
    }
  });

  it('a model reload: swapped back here and on the peer that took it', async () => {
    const before = (await status()).model;
    const other = before === 'lr-v2' ? 'lr-v3' : 'lr-v2';
    answers = [[refused('out of memory'), { ok: true }]];
    const r = await admin('/admin/reload/model', JSON.stringify({ version: other }));
    expect(r.status).toBe(409);
    expect(((await r.json()) as { reason: string }).reason).toBe('model refused; the running model stays');
    expect((await status()).model).toBe(before);
    expect(told).toEqual([
      { kind: 'reloadModel', version: other },
      { kind: 'reloadModel', version: before },
    ]);
  });

  it('an unknown campaign: 404 UNKNOWN_CAMPAIGN, not NOT_FOUND (the route exists)', async () => {
    for (const action of ['pause', 'resume']) {
      const r = await admin(`/admin/campaigns/no-such-campaign/${action}`);
      expect(r.status).toBe(404);
      expect(await r.json()).toEqual({ error: 'UNKNOWN_CAMPAIGN', reason: 'no campaign no-such-campaign in the serving policies' });
    }
    expect(told).toEqual([]);
  });

  // The undo's results are read at the places of the peers that took the action (peers.apply keeps
  // each worker's place, src/cli/workers.ts): with 3 workers, one gone between an action and its
  // undo shifted the others' answers, and a missing undo answer read as put back (review r4).
  it('names a peer that took the action and gave no answer to its undo as still holding it', async () => {
    answers = [[refused('disk full'), { ok: true }], [{ ok: true }]];
    const r = await admin('/admin/campaigns/acme-shoes/pause');
    expect(r.status).toBe(409);
    const body = (await r.json()) as { problems: string[]; stillApplied?: string[] };
    // Before: no stillApplied, the pause read as put back on peer 2.
    expect(body.stillApplied).toEqual(['another worker (2 of 2)']);
    expect(body.problems).toEqual(['another worker (1 of 2): disk full', 'another worker (2 of 2), putting it back: no answer']);
  });
});
