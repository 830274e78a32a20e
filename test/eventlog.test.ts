import { execFileSync, spawnSync } from 'node:child_process';
import fs, { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import type { BidRequest } from 'iab-openrtb/v26';
import { checkEventLogDir, createEventLog } from '../src/eventlog/eventlog.js';
import { readEvents } from '../src/eventlog/read.js';
import { startBidder } from './helpers/bidder.js';
import { writeBidRecord, type BidRecord } from '../src/eventlog/records.js';
import { ByteWriter } from '../src/json/bytes.js';
import { buildCatalog } from '../src/eligibility/catalog.js';
import { createEligibility } from '../src/eligibility/eligibility.js';
import { createPrivacy } from '../src/eligibility/privacy.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(rotateBytes = 1 << 20, keepBytes = 0) {
  const dir = mkdtempSync(join(tmpdir(), 'eventlog-'));
  dirs.push(dir);
  let drops = 0;
  let errors = 0;
  let t = Date.UTC(2026, 0, 1);
  const removed: string[] = [];
  const log = createEventLog({ dir, rotateBytes, keepBytes, enabled: true, clock: () => (t += 1000), onError: () => errors++, onDrop: () => drops++, onRemoved: (f) => void removed.push(f) });
  const lines = () =>
    readdirSync(dir)
      .sort()
      .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)));
  return { dir, log, lines, removed, drops: () => drops, errors: () => errors };
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

  it('removes the oldest files at rotation to keep the folder within keepBytes, never the file being written', async () => {
    const { dir, log, lines, removed, errors } = setup(2_000, 10_000);
    for (let i = 0; i < 600; i++) {
      log.append(click(i));
      // Files a second apart at least, so their modification times order them.
      if (i % 37 === 0) await new Promise((r) => setTimeout(r, 15));
    }
    await log.close();
    const sizes = readdirSync(dir).map((f) => readFileSync(join(dir, f)).length);
    expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(10_000 + 2_200);
    expect(removed.length).toBeGreaterThan(0);
    // What is left is the newest records, in order, ending with the last one written.
    const ts = lines().map((r) => r.ts);
    expect(ts.at(-1)).toBe(599);
    expect(ts).toEqual(Array.from({ length: ts.length }, (_, i) => 600 - ts.length + i));
    expect(errors()).toBe(0);
  });

  it("a stalled bid-record write holds no bid's answer, nor a notice's record; the bid's record lands whole after its win's", async () => {
    const t = await startBidder();
    const realWrite = fs.write;
    const realWriteSync = fs.writeSync;
    const isBid = (buf: unknown) => Buffer.isBuffer(buf) && buf.includes('"type":"bid"');
    // The disk takes a bid record's write and does not finish it until released.
    const stalled: Array<() => void> = [];
    let bidsOnLoop = 0;
    try {
      (fs as unknown as { write: unknown }).write = (...a: unknown[]) => {
        if (isBid(a[1])) stalled.push(() => (realWrite as (...x: unknown[]) => void)(...a));
        else (realWrite as (...x: unknown[]) => void)(...a);
      };
      (fs as unknown as { writeSync: unknown }).writeSync = (...a: unknown[]) => {
        // Before: the turn's bid records were written here, the loop waiting on the disk.
        if (isBid(a[1])) bidsOnLoop++;
        return (realWriteSync as (...x: unknown[]) => number)(...a);
      };
      syncBuiltinESMExports();
      const req = { id: 'stall-1', at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } };
      const r = await t.bid(req);
      expect(r.status).toBe(200);
      const b = (await r.json()).seatbid[0].bid[0];
      const win = await fetch(t.url + b.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', (b.price / 2).toFixed(4)).replace('${AUCTION_MIN_TO_WIN}', ''));
      expect(win.status).toBe(200);
      const events = join(t.dir, 'events');
      const onDisk = () => readdirSync(events).flatMap((f) => readFileSync(join(events, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; bidId: string }));
      expect(bidsOnLoop).toBe(0);
      expect(onDisk().map((e) => [e.type, e.bidId])).toEqual([['win', b.id]]);
      expect(stalled).toHaveLength(1);
      stalled.shift()!();
      await vi.waitFor(() => expect(onDisk().map((e) => [e.type, e.bidId])).toEqual([['win', b.id], ['bid', b.id]]));
    } finally {
      (fs as unknown as { write: unknown }).write = realWrite;
      (fs as unknown as { writeSync: unknown }).writeSync = realWriteSync;
      syncBuiltinESMExports();
      for (const go of stalled) go();
      await t.close();
    }
  });

  it('a directory that cannot be created drops and counts records, never throws', async () => {
    const base = mkdtempSync(join(tmpdir(), 'eventlog-'));
    dirs.push(base);
    writeFileSync(join(base, 'file'), '');
    let drops = 0;
    let errors = 0;
    // Under a regular file: ENOTDIR even for root, who ignores permission bits.
    const log = createEventLog({ dir: join(base, 'file', 'events'), rotateBytes: 1 << 20, keepBytes: 0, enabled: true, clock: () => 0, onError: () => errors++, onDrop: () => drops++ });
    for (let i = 0; i < 10; i++) log.append(click(i));
    await log.close();
    expect(drops).toBe(10);
    expect(errors).toBeGreaterThan(0);
  });

  it('the bidder refuses to start on an event log folder that cannot be written, naming it and what to set', async () => {
    const base = mkdtempSync(join(tmpdir(), 'eventlog-'));
    dirs.push(base);
    writeFileSync(join(base, 'file'), '');
    const dir = join(base, 'file', 'events');
    await expect(startBidder({ eventLog: { dir, rotateBytes: 1 << 20, keepBytes: 0, enabled: true } })).rejects.toThrow(
      `the event log folder ${dir} cannot be written (ENOTDIR): set eventLog.dir to a writable folder, or eventLog.enabled: false to run without an event log`,
    );
    // Switched off, the same folder is never looked at.
    const t = await startBidder({ eventLog: { dir, rotateBytes: 1 << 20, keepBytes: 0, enabled: false } });
    await t.close();
  });

  it('makes every missing folder of a nested path, and refuses a path that is a file', () => {
    const base = mkdtempSync(join(tmpdir(), 'eventlog-'));
    dirs.push(base);
    checkEventLogDir(join(base, 'a', 'b', 'c'));
    expect(statSync(join(base, 'a', 'b', 'c')).isDirectory()).toBe(true);
    // Already there: nothing to do.
    checkEventLogDir(join(base, 'a', 'b', 'c'));
    writeFileSync(join(base, 'file'), '');
    expect(() => checkEventLogDir(join(base, 'file'))).toThrow(`the event log folder ${join(base, 'file')} cannot be written (EEXIST)`);
  });

  it('`bidder serve` with the event log under /proc exits 2 at once naming the folder, as other bad settings, instead of hanging', () => {
    if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
    const policies = mkdtempSync(join(tmpdir(), 'eventlog-policies-'));
    dirs.push(policies);
    cpSync('policies', policies, { recursive: true });
    // mkdir under /proc answers ENOENT with the parent there, on which Node 20's recursive mkdir
    // spun forever; the serve process then ignored SIGTERM too, hence SIGKILL at the timeout.
    const dir = `/proc/eventlog-test-${process.pid}/events`;
    writeFileSync(join(policies, 'bidder.yaml'), readFileSync(join(policies, 'bidder.yaml'), 'utf8').replace('dir: var/events', `dir: ${dir}`));
    const run = spawnSync(process.execPath, ['dist/cli.js', 'serve', '--policies', policies, '--port', '0', '--host', '127.0.0.1', '--log-level', 'silent'], {
      encoding: 'utf8',
      timeout: 20_000,
      killSignal: 'SIGKILL',
    });
    expect(run.signal).toBeNull();
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`the event log folder ${dir} cannot be written (ENOENT): set eventLog.dir to a writable folder`);
  });
});

describe('the bid record, written field by field', () => {
  // Small and reused across runs: records after the first are written over stale bytes and grow it.
  const w = new ByteWriter(16);
  const text = fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom('"', '\\', '\n', '\u0001', '\u007f', '\ud800', '\udc00', '😀', 'é', 'a', '-') }));
  const eligibility = createEligibility({
    catalog: buildCatalog([]),
    ratesPerUsd: new Map([['USD', 1]]),
    privacy: createPrivacy(),
    clock: () => Date.UTC(2026, 11, 2, 15),
    userKey: (req) => (req.user?.id as string | undefined) ?? '',
    isPaused: () => false,
    frequency: () => 0,
  });

  it('is JSON.stringify of the record as UTF-8, byte for byte, on contexts eligibility builds (its lists cut to 16)', () => {
    fc.assert(
      fc.property(
        fc.record({
          id: text, impId: text, siteId: text, domain: text, pub: text, app: fc.boolean(), cats: fc.array(text, { maxLength: 20 }), os: text, country: text,
          region: text, devicetype: fc.integer({ min: 0, max: 9 }), segs: fc.array(text, { maxLength: 20 }), user: fc.option(text), deal: fc.option(text), video: fc.boolean(),
          bidId: text, fingerprint: fc.option(text), model: text, price: fc.oneof(fc.double(), fc.constant(-0), fc.integer()), pctr: fc.double({ min: 0, max: 1 }), multiplier: fc.option(fc.double({ min: 0, max: 10 })),
          auctionType: fc.option(fc.constantFrom(1, 2)), profile: fc.option(fc.record({ seenCategories: fc.array(text, { maxLength: 2 }), clickedCategories: fc.array(text, { maxLength: 2 }), campaignImpressions: fc.dictionary(text, fc.nat()) })),
        }),
        (r) => {
          const inv = { id: r.siteId, bundle: r.siteId, domain: r.domain, cat: r.cats, publisher: { id: r.pub } };
          const req = {
            id: r.id,
            imp: [{ id: r.impId, ...(r.video ? { video: { w: 640, h: 360, mimes: ['video/mp4'] } } : { banner: { w: 300, h: 250 } }), ...(r.deal !== null ? { pmp: { deals: [{ id: r.deal }] } } : {}) }],
            ...(r.app ? { app: inv } : { site: inv }),
            device: { os: r.os, devicetype: r.devicetype, geo: { country: r.country, region: r.region } },
            ...(r.user !== null ? { user: { id: r.user, data: [{ id: 'dmp', segment: r.segs.map((id) => ({ id })) }] } } : {}),
          };
          const ctx = eligibility.plan(req as unknown as BidRequest, 'default', 'USD').imps[0].ctx;
          const rec: BidRecord = {
            type: 'bid', ts: 1780000000123, bidId: r.bidId, campaignId: r.siteId, creativeId: r.domain, ...(r.fingerprint !== null ? { creativeFingerprint: r.fingerprint } : {}), priceCpmUsd: r.price, pctr: r.pctr,
            ...(r.multiplier !== null ? { multiplier: r.multiplier } : {}), ...(r.auctionType !== null ? { auctionType: r.auctionType } : {}), modelVersion: r.model, ctx,
            ...(r.profile !== null ? { profile: r.profile } : {}),
          };
          w.pos = 0;
          writeBidRecord(w, rec);
          // The first 16 categories and segments are kept (more than the model reads).
          const kept = { ...rec, ctx: { ...ctx, categories: ctx.categories.slice(0, 16), segments: ctx.segments.slice(0, 16) } };
          expect(w.copy().equals(Buffer.from(JSON.stringify(kept) + '\n'))).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('readEvents', () => {
  it('counts a line that is no record, torn or JSON of another shape, as bad and reads on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eventlog-read-'));
    dirs.push(dir);
    const file = join(dir, 'events.ndjson');
    const lines = ['{"type":"win","ts":1,"bidId":"b1"}', 'null', '[]', '5', '"win"', '{}', '{"type":"win"}', '{"type":1,"bidId":"b2"}', '{"type":"click","bidId":["b1"]}', '{"type":"click","ts":2,"bidId":"b1"}', '{"type":"cli'];
    writeFileSync(file, `${lines.join('\n')}\n`);
    const bad: number[] = [];
    const types: string[] = [];
    for await (const r of readEvents([file], (_f, line) => void bad.push(line))) types.push(r.type);
    expect(types).toEqual(['win', 'click']);
    expect(bad).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 11]);
  });
});
