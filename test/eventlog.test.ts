import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEventLog } from '../src/eventlog/eventlog.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(rotateBytes = 1 << 20) {
  const dir = mkdtempSync(join(tmpdir(), 'eventlog-'));
  dirs.push(dir);
  let drops = 0;
  let errors = 0;
  let t = Date.UTC(2026, 0, 1);
  const log = createEventLog({ dir, rotateBytes, enabled: true, clock: () => (t += 1000), onError: () => errors++, onDrop: () => drops++ });
  const lines = () =>
    readdirSync(dir)
      .sort()
      .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)));
  return { dir, log, lines, drops: () => drops, errors: () => errors };
}

const click = (i: number) => ({ type: 'click' as const, ts: i, bidId: `b${i}`, campaignId: 'c', creativeId: 'k' });

describe('event log', () => {
  it('writes every record of a turn, in order, and close flushes what is still pending', async () => {
    const { log, lines, drops } = setup();
    for (let i = 0; i < 500; i++) log.append(click(i));
    await new Promise((r) => setImmediate(r));
    for (let i = 500; i < 1000; i++) log.append(click(i));
    await log.close();
    expect(lines().map((r) => r.bidId)).toEqual(Array.from({ length: 1000 }, (_, i) => `b${i}`));
    expect(drops()).toBe(0);
  });

  it('rotates by size without losing or splitting a record', async () => {
    const { dir, log, lines } = setup(2_000);
    for (let i = 0; i < 300; i++) {
      log.append(click(i));
      if (i % 37 === 0) await new Promise((r) => setImmediate(r));
    }
    await log.close();
    expect(readdirSync(dir).length).toBeGreaterThan(5);
    expect(lines().map((r) => r.ts)).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });

  it('a directory that cannot be created drops and counts records, never throws', async () => {
    const base = mkdtempSync(join(tmpdir(), 'eventlog-'));
    dirs.push(base);
    writeFileSync(join(base, 'file'), '');
    let drops = 0;
    let errors = 0;
    // Under a regular file: ENOTDIR even for root, who ignores permission bits.
    const log = createEventLog({ dir: join(base, 'file', 'events'), rotateBytes: 1 << 20, enabled: true, clock: () => 0, onError: () => errors++, onDrop: () => drops++ });
    for (let i = 0; i < 10; i++) log.append(click(i));
    await log.close();
    expect(drops).toBe(10);
    expect(errors).toBeGreaterThan(0);
  });
});
