/**
 * Learned state across a change of `serve --workers`: each process keeps its own file in the
 * journal folder (learned.json alone, learned.w<i>.json for worker i), so a process whose file is
 * missing seeds from the newest other one there, without that process's spend; and a file older
 * than MAX_LEARNED_AGE_MS is ignored, whoever wrote it.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLearnedStore, MAX_LEARNED_AGE_MS } from '../src/pace/learned.js';
import { createShader, createValuePacer, mulberry32 } from '../src/pace/index.js';
import { createBidder } from '../src/bidder.js';
import pino from 'pino';
import { TEST_SECRET, testClock } from './helpers/bidder.js';

const DAY0 = Date.UTC(2026, 5, 1);
const HOUR = 3_600_000;

/** A shader that has learnt several sites, and a pacer with two days of traffic and an hourly cap's wins. */
function trained(clock: { now: number }) {
  const shader = createShader();
  const r = mulberry32(3);
  for (let i = 0; i < 2000; i++) {
    const site = `s${i % 8}`;
    const h = Math.exp(Math.log(1 + (i % 8)) + 0.3 * (r() - 0.5));
    shader.observe(`x|banner|site|${site}~h${i % 24}`, 3, h <= 3, h);
  }
  const campaigns = [{ id: 'c', budget: { dailyUsd: 10, hourlyCapShare: 0.2 } }];
  const pacer = createValuePacer({ clock: () => clock.now, random: mulberry32(1), campaigns, slotMs: 60_000 });
  for (let d = 0; d < 2; d++) {
    for (let i = 0; i < 2000; i++) {
      clock.now = DAY0 + d * 86_400_000 + 8 * HOUR + Math.floor((i * 12 * HOUR) / 2000);
      pacer.multiplier('c', clock.now, { valueCpmUsd: 2, firstPrice: false });
      if (i % 50 === 0) pacer.onWin('c', 'cr', 1, clock.now, 0.01);
    }
  }
  return { shader, pacer, campaigns };
}

function logs() {
  const infos: string[] = [];
  const warnings: string[] = [];
  return { infos, warnings, logger: { info: (_: object, m: string) => infos.push(m), warn: (_: object, m: string) => warnings.push(m) } };
}

describe('learned state across a change of the number of workers', () => {
  const root = mkdtempSync(join(tmpdir(), 'learned-siblings-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  async function write(dir: string, name: string, clock: { now: number }) {
    const t = trained(clock);
    await createLearnedStore({ path: join(dir, name), clock: () => clock.now, logger: logs().logger, shader: t.shader, pacer: t.pacer, everyMs: 0 }).close();
    return t;
  }

  it("a single process's learned.json seeds worker 0, without its spend", async () => {
    const dir = join(root, 'one-to-n');
    mkdirSync(dir, { recursive: true });
    const clock = { now: DAY0 };
    const a = await write(dir, 'learned.json', clock);
    expect(a.pacer.snapshot().spend!.length).toBeGreaterThan(0);
    const { infos, warnings, logger } = logs();
    const shader = createShader();
    const pacer = createValuePacer({ clock: () => clock.now, random: mulberry32(5), campaigns: a.campaigns, share: 0.5 });
    createLearnedStore({ path: join(dir, 'learned.w0.json'), clock: () => clock.now, logger, shader, pacer, everyMs: 0 }).start();
    expect(shader.snapshot().fits.length).toBeGreaterThan(1);
    expect(shader.snapshot()).toEqual(a.shader.snapshot());
    // The single process's counts are of all its traffic; this worker sees half of it.
    const file = a.pacer.snapshot();
    expect(file.share).toBe(1);
    expect(file.campaigns).toHaveLength(1);
    expect(file.today!.length).toBeGreaterThan(0);
    const seeded = pacer.snapshot();
    expect(seeded.share).toBe(0.5);
    expect(seeded.campaigns).toHaveLength(1);
    const [id, days, counts, hours] = file.campaigns[0];
    expect(seeded.campaigns[0][0]).toBe(id);
    expect(seeded.campaigns[0][1]).toBe(days);
    expect(seeded.campaigns[0][3]).toEqual(hours);
    expect(counts.reduce((x, y) => x + y, 0)).toBeGreaterThan(1000);
    seeded.campaigns[0][2].forEach((n, h) => expect(n).toBeCloseTo(counts[h] / 2, 9));
    // Its day so far is another process's: this worker counts its own from its start.
    expect(seeded.today).toEqual([]);
    expect(pacer.snapshot().calibration).toEqual(a.pacer.snapshot().calibration);
    // Another process's hour of wins against its share of the cap is not this worker's.
    expect(pacer.snapshot().spend).toEqual([]);
    expect(warnings).toEqual([]);
    expect(infos).toHaveLength(1);
    expect(infos[0]).toMatch(/learned state seeded from learned\.json, .*learned\.w0\.json missing/);
  });

  it("a sibling file that does not say the share it counted at seeds no traffic counts, its shader and calibration still", async () => {
    const dir = join(root, 'no-share');
    mkdirSync(dir, { recursive: true });
    const clock = { now: DAY0 };
    const a = await write(dir, 'learned.json', clock);
    const path = join(dir, 'learned.json');
    const text = JSON.parse(readFileSync(path, 'utf8')) as { pacer: { share?: number } };
    delete text.pacer.share;
    writeFileSync(path, JSON.stringify(text));
    const shader = createShader();
    const pacer = createValuePacer({ clock: () => clock.now, random: mulberry32(5), campaigns: a.campaigns, share: 0.5 });
    createLearnedStore({ path: join(dir, 'learned.w1.json'), clock: () => clock.now, logger: logs().logger, shader, pacer, everyMs: 0 }).start();
    expect(shader.snapshot()).toEqual(a.shader.snapshot());
    expect(pacer.snapshot().calibration).toEqual(a.pacer.snapshot().calibration);
    expect(pacer.snapshot().campaigns).toEqual([]);
    expect(pacer.snapshot().today).toEqual([]);
  });

  it("this process's own file, stale by more than SIBLING_NEWER_MS against a sibling, gives way to it; a few minutes older, it is kept", () => {
    const dir = join(root, 'stale-own');
    mkdirSync(dir, { recursive: true });
    const now = DAY0 + 10 * 86_400_000;
    const fits = (mu: number, n: number) => ({ fits: [['*', Math.log(mu), Math.log(0.5), n]], effects: [] });
    const file = (name: string, savedAtMs: number, shader: object) => writeFileSync(join(dir, name), JSON.stringify({ version: 1, savedAtMs, shader }));
    // learned.json, left by a single process 6.9 days ago; its workers have run since.
    file('learned.json', now - 6.9 * 86_400_000, fits(1, 100));
    file('learned.w0.json', now - HOUR, fits(2, 1000));
    let { infos, warnings, logger } = logs();
    let shader = createShader();
    createLearnedStore({ path: join(dir, 'learned.json'), clock: () => now, logger, shader, everyMs: 0 }).start();
    expect(shader.snapshot().fits.find((f) => f[0] === '*')![1]).toBeCloseTo(Math.log(2), 9);
    expect(warnings).toEqual([]);
    expect(infos).toEqual([expect.stringMatching(/seeded from learned\.w0\.json, .*learned\.json older by 165 h/)]);
    // Workers saving a few minutes apart: each keeps its own.
    file('learned.json', now - HOUR - 10 * 60_000, fits(1, 100));
    ({ infos, warnings, logger } = logs());
    shader = createShader();
    createLearnedStore({ path: join(dir, 'learned.json'), clock: () => now, logger, shader, everyMs: 0 }).start();
    expect(shader.snapshot().fits.find((f) => f[0] === '*')![1]).toBeCloseTo(Math.log(1), 9);
    expect(warnings).toEqual([]);
    expect(infos).toEqual([expect.stringMatching(/^learned state restored/)]);
  });

  it('an orphaned learned.w1.json seeds a single process whose learned.json is missing; the newest sibling wins', async () => {
    const dir = join(root, 'n-to-one');
    mkdirSync(dir, { recursive: true });
    const clock = { now: DAY0 };
    const w1 = await write(dir, 'learned.w1.json', clock);
    // An older worker file, of a trained-from-nothing shader: not the one taken.
    writeFileSync(join(dir, 'learned.w0.json'), JSON.stringify({ version: 1, savedAtMs: clock.now - HOUR, shader: createShader().snapshot() }));
    const { infos, logger } = logs();
    const shader = createShader();
    createLearnedStore({ path: join(dir, 'learned.json'), clock: () => clock.now, logger, shader, everyMs: 0 }).start();
    expect(shader.snapshot()).toEqual(w1.shader.snapshot());
    expect(infos).toEqual([expect.stringMatching(/seeded from learned\.w1\.json/)]);
  });

  it('a file older than the bound is ignored with a warning, its own or a sibling', async () => {
    const dir = join(root, 'old');
    mkdirSync(dir, { recursive: true });
    const clock = { now: DAY0 };
    await write(dir, 'learned.json', clock);
    const saved = JSON.parse(readFileSync(join(dir, 'learned.json'), 'utf8')) as { savedAtMs: number };
    clock.now = saved.savedAtMs + MAX_LEARNED_AGE_MS + HOUR;
    for (const name of ['learned.json', 'learned.w0.json']) {
      const { infos, warnings, logger } = logs();
      const shader = createShader();
      createLearnedStore({ path: join(dir, name), clock: () => clock.now, logger, shader, everyMs: 0 }).start();
      expect(shader.snapshot().fits).toHaveLength(1);
      expect(warnings).toEqual([expect.stringMatching(/too old/)]);
      expect(infos.filter((m) => /restored|seeded/.test(m))).toEqual([]);
    }
  });

  it('with no learned file at all, one info line says so', () => {
    const dir = join(root, 'none');
    mkdirSync(dir, { recursive: true });
    const { infos, warnings, logger } = logs();
    createLearnedStore({ path: join(dir, 'learned.w2.json'), clock: () => DAY0, logger, shader: createShader(), everyMs: 0 }).start();
    expect(warnings).toEqual([]);
    expect(infos).toEqual([`no learned state at ${join(dir, 'learned.w2.json')}: starting from priors`]);
  });

  it("the bidder booted as worker 0 after a single-process run takes that run's shader, and says so", async () => {
    const dir = join(root, 'bidder');
    const journal = join(dir, 'ledger');
    mkdirSync(journal, { recursive: true });
    // A single process's shader: competition around 2 USD CPM, learnt over 1,000 notices.
    writeFileSync(join(journal, 'learned.json'), JSON.stringify({ version: 1, savedAtMs: Date.parse('2026-06-01T11:00:00Z'), shader: { fits: [['*', Math.log(2), Math.log(0.5), 1000]], effects: [] } }));
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const bidder = await createBidder({
      policiesDir: 'policies',
      clock: testClock(),
      watchModels: false,
      logger,
      workerIndex: 0,
      overrides: {
        host: '127.0.0.1',
        port: 0,
        noticeSecret: TEST_SECRET,
        seed: 'test',
        eventLog: { dir: join(dir, 'events'), rotateBytes: 1 << 20, enabled: true },
        ledger: { journalPath: journal, redisUrl: '' } as never,
        ...(process.env.TEST_MODELS_DIR ? { modelsDir: process.env.TEST_MODELS_DIR } : {}),
      },
    });
    await bidder.close();
    expect(lines.filter((l) => /learned state seeded from learned\.json/.test(l))).toHaveLength(1);
    const saved = JSON.parse(readFileSync(join(journal, 'learned.w0.json'), 'utf8')) as { shader: { fits: Array<[string, number, number, number]> } };
    const pooled = saved.shader.fits.find((f) => f[0] === '*')!;
    expect(pooled[3]).toBeGreaterThanOrEqual(1000);
    expect(pooled[1]).toBeCloseTo(Math.log(2), 6);
  });
});
