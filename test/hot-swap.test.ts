import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/** Swapping the model in a running bidder fails no request and never leaves it without a model. */
describe('model hot swap under concurrent load', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder({ adminToken: 'swap-token-0123456789' });
  });
  afterAll(() => t.close());

  it('answers every request while versions are swapped back and forth', async () => {
    const body = (i: number) => ({ id: `hs-${i}`, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: `s${i % 7}`, cat: ['IAB12'] }, user: { id: `u${i % 50}` } });
    const statuses = new Map<number, number>();
    let i = 0;
    let stop = false;
    const worker = async () => {
      while (!stop) {
        const r = await t.bid(body(i++));
        await r.arrayBuffer();
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }
    };
    const load = Array.from({ length: 16 }, worker);
    const versions: string[] = [];
    for (const version of ['lr-v2', 'dcn-v2', 'lr-v2', 'dcn-v2']) {
      const r = await fetch(`${t.url}/admin/reload/model`, {
        method: 'POST',
        headers: { authorization: 'Bearer swap-token-0123456789', 'content-type': 'application/json' },
        body: JSON.stringify({ version }),
      });
      expect(r.status).toBe(200);
      versions.push((await r.json()).version);
      await new Promise((r) => setTimeout(r, 150));
    }
    stop = true;
    await Promise.all(load);
    expect(versions).toEqual(['lr-v2', 'dcn-v2', 'lr-v2', 'dcn-v2']);
    expect([...statuses.keys()].every((s) => s === 200 || s === 204)).toBe(true);
    expect(statuses.get(200)).toBeGreaterThan(0);
    expect(await t.metric('bidder_nobid_total', { reason: 'MODEL_NOT_READY' })).toBe(0);
    expect(await t.metric('bidder_internal_errors_total')).toBe(0);
    expect(await t.metric('bidder_model_swaps_total', { result: 'ok' })).toBe(5);
  });
});

describe('which model a reload leaves serving', () => {
  const token = 'swap-token-0123456789';
  const reload = (t: TestBidder, body: object) =>
    fetch(`${t.url}/admin/reload/model`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const serving = async (t: TestBidder) => ((await (await fetch(`${t.url}/readyz`)).json()) as { model: string }).model;
  let models: string;
  beforeAll(() => {
    // lr-v3 and dcn-v2, CURRENT naming lr-v3; a copy whose meta names another version; a version linked in from outside.
    models = mkdtempSync(join(tmpdir(), 'swap-models-'));
    for (const v of ['lr-v3', 'lr-v2', 'dcn-v2']) cpSync(join('models', v), join(models, v), { recursive: true });
    writeFileSync(join(models, 'CURRENT'), 'lr-v3\n');
    cpSync(join('models', 'lr-v2'), join(models, 'lr-v9'), { recursive: true });
    cpSync(join('models', 'lr-v2'), join(tmpdir(), `${basename(models)}-lr-v7`), { recursive: true });
    symlinkSync(join(tmpdir(), `${basename(models)}-lr-v7`), join(models, 'lr-v7'));
    return () => {
      rmSync(models, { recursive: true, force: true });
      rmSync(join(tmpdir(), `${basename(models)}-lr-v7`), { recursive: true, force: true });
    };
  });

  it('the last reload asked wins, also when the one asked before it takes longer to load', async () => {
    const t = await startBidder({ adminToken: token, modelsDir: models });
    try {
      for (let trial = 0; trial < 5; trial++) {
        const slow = reload(t, { version: 'dcn-v2' });
        await new Promise((r) => setTimeout(r, 5));
        const quick = reload(t, { version: 'lr-v3' });
        expect((await Promise.all([slow, quick])).map((r) => r.status)).toEqual([200, 200]);
        expect(await serving(t)).toBe('lr-v3');
      }
    } finally {
      await t.close();
    }
  });

  it('--model picks the start version; a reload without one loads what CURRENT names, as the admin docs say', async () => {
    const t = await startBidder({ adminToken: token, modelsDir: models, modelVersion: 'lr-v2' });
    try {
      expect(await serving(t)).toBe('lr-v2');
      const r = await reload(t, {});
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ ok: true, version: 'lr-v3' });
      expect(await serving(t)).toBe('lr-v3');
    } finally {
      await t.close();
    }
  });

  it('refuses a folder whose meta.json names another version, and a version linked in from outside the models folder', async () => {
    const t = await startBidder({ adminToken: token, modelsDir: models });
    try {
      const renamed = await reload(t, { version: 'lr-v9' });
      expect(renamed.status).toBe(409);
      expect(((await renamed.json()) as { problems: string[] }).problems).toEqual(['meta.json names version lr-v2, its folder is lr-v9: a version is loaded under its own name']);
      const linked = await reload(t, { version: 'lr-v7' });
      expect(linked.status).toBe(409);
      expect(((await linked.json()) as { problems: string[] }).problems).toEqual([expect.stringMatching(/lr-v7 is a link to .*, outside .*: versions load only from the models folder/)]);
      expect(await serving(t)).toBe('lr-v3');
    } finally {
      await t.close();
    }
  });
});
