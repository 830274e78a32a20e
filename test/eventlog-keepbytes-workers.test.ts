import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEventLog } from '../src/eventlog/eventlog.js';
import { createBidder } from '../src/bidder.js';
import { TEST_SECRET, testClock } from './helpers/bidder.js';

/**
 * `eventLog.keepBytes` bounds the event-log folder, the `w<i>/` folders of `serve --workers`
 * included: N workers keep keepBytes between them, not N × keepBytes, and a folder left by a run
 * with more workers is pruned too.
 */
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const root = () => {
  const d = mkdtempSync(join(tmpdir(), 'keepbytes-'));
  dirs.push(d);
  return d;
};
/** Bytes of every file under `dir`, its folders included. */
const treeBytes = (dir: string): number =>
  readdirSync(dir, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? treeBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size), 0);
const click = (i: number) => ({ type: 'click' as const, ts: i, bidId: `b${i}`, campaignId: 'c', creativeId: 'k' });
const turn = () => new Promise((r) => setTimeout(r, 5));

describe('eventLog.keepBytes with worker folders', () => {
  it('holds the folder and its worker folders together within keepBytes, each worker\'s current file aside', async () => {
    const dir = root();
    const keepBytes = 10_000;
    const rotateBytes = 2_000;
    // As bidder.ts makes them for `serve --workers 2`.
    const errors: Error[] = [];
    const logs = [0, 1].map((w) => createEventLog({ dir: join(dir, `w${w}`), keepRoot: dir, rotateBytes, keepBytes, enabled: true, clock: () => Date.now(), onError: (err) => void errors.push(err), onDrop: () => {} }));
    for (let i = 0; i < 800; i++) {
      logs[i % 2].append(click(i));
      if (i % 20 === 0) await turn();
    }
    await Promise.all(logs.map((l) => l.close()));
    // Both prune the same tree: a file the other removed first is no error.
    expect(errors).toEqual([]);
    // Each worker's file being written when it last pruned may have grown to rotateBytes since.
    expect(treeBytes(dir)).toBeLessThanOrEqual(keepBytes + 2 * (rotateBytes + 200));
    // Both workers' latest records are kept.
    for (const w of ['w0', 'w1']) expect(readdirSync(join(dir, w)).length).toBeGreaterThan(0);
  });

  it('prunes the folder of a worker of an earlier run with more workers, oldest first, never a folder\'s newest file', async () => {
    const dir = root();
    // `--workers 3` before: w2 is nobody's now. Its files are older than anything written today.
    mkdirSync(join(dir, 'w2'));
    const old = Date.now() / 1000 - 3600;
    for (let i = 0; i < 5; i++) {
      const f = join(dir, 'w2', `events-20260101T00000${i}-0.ndjson`);
      writeFileSync(f, 'x'.repeat(3_000));
      utimesSync(f, old + i, old + i);
    }
    // A file beside the log that is not the log's: never touched.
    mkdirSync(join(dir, 'archive'));
    writeFileSync(join(dir, 'archive', 'events-20250101T000000-0.ndjson'), 'x'.repeat(3_000));
    utimesSync(join(dir, 'archive', 'events-20250101T000000-0.ndjson'), old - 10, old - 10);
    const removed: string[] = [];
    const errors: Error[] = [];
    const log = createEventLog({ dir: join(dir, 'w0'), keepRoot: dir, rotateBytes: 2_000, keepBytes: 8_000, enabled: true, clock: () => Date.now(), onError: (err) => void errors.push(err), onDrop: () => {}, onRemoved: (f) => void removed.push(f) });
    for (let i = 0; i < 100; i++) {
      log.append(click(i));
      if (i % 10 === 0) await turn();
    }
    await log.close();
    expect(errors).toEqual([]);
    // w2's four older files went first; its newest stays (a worker could be writing it).
    expect(readdirSync(join(dir, 'w2'))).toEqual(['events-20260101T000004-0.ndjson']);
    expect(removed.slice(0, 4)).toEqual([0, 1, 2, 3].map((i) => join(dir, 'w2', `events-20260101T00000${i}-0.ndjson`)));
    expect(readdirSync(join(dir, 'archive'))).toHaveLength(1);
  });

  it('bidders on worker threads share one keepBytes', async () => {
    const dir = root();
    const keepBytes = 20_000;
    const rotateBytes = 4_000;
    const bidders = await Promise.all(
      [0, 1].map((w) =>
        createBidder({
          policiesDir: 'policies',
          clock: testClock(),
          watchModels: false,
          workerIndex: w,
          workers: 2,
          overrides: {
            host: '127.0.0.1',
            port: 0,
            logLevel: 'silent',
            noticeSecret: TEST_SECRET,
            seed: 'test',
            eventLog: { dir: join(dir, 'events'), rotateBytes, keepBytes, enabled: true },
            ledger: { journalPath: join(dir, `ledger-w${w}`), redisUrl: '' },
          },
        }),
      ),
    );
    try {
      await turn();
      const req = (id: string) => JSON.stringify({ id, at: 2, tmax: 5000, imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });
      for (let i = 0; i < 60; i++) {
        await Promise.all(bidders.map((b, w) => fetch(`${b.url}/openrtb2/bid`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: req(`k${w}-${i}`) })));
      }
    } finally {
      await Promise.all(bidders.map((b) => b.close()));
    }
    const events = join(dir, 'events');
    expect(readdirSync(events).sort()).toEqual(['w0', 'w1']);
    // Each worker wrote more than keepBytes; together they kept keepBytes, and their current files.
    expect(treeBytes(events)).toBeLessThanOrEqual(keepBytes + 2 * (rotateBytes + 2_000));
  });
});
