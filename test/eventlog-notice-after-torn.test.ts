import fs, { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';

/**
 * A bid write cut short (a full disk) while a notice's synchronous write lands right after its torn
 * piece (space freed meanwhile, by another process or this log's own prune): the notice, answered
 * 200, was glued onto the torn bid record, one unreadable line, and counted nowhere (review of
 * 6fdda61). fs.write is wrapped: it writes the first 100 bytes of the turn's bid records for real
 * and reports the short write only after the win has been appended.
 */
const realWrite = fs.write;
let finish: () => void = () => {};
(fs as { write: unknown }).write = (fd: number, buf: Buffer, off: number, _len: number, _pos: null, cb: (err: null, w: number) => void) => {
  const w = fs.writeSync(fd, buf, off, 100);
  finish = () => cb(null, w);
};
syncBuiltinESMExports();
const { createEventLog } = await import('../src/eventlog/eventlog.js');
const dir = mkdtempSync(join(tmpdir(), 'eventlog-torn-'));
afterAll(() => {
  (fs as { write: unknown }).write = realWrite;
  syncBuiltinESMExports();
  rmSync(dir, { recursive: true, force: true });
});

it('a notice written after a torn bid write stays a whole line', async () => {
  const ctx = { requestId: 'r', impId: '1', exchange: 'default', isApp: false, siteOrAppId: 's1', publisherId: 'p', domain: 'news.example', categories: ['IAB12'], deviceType: 2, os: '', country: 'US', region: '', hour: 12, format: 'banner', w: 300, h: 250, dealId: '', userKey: '', segments: [], userDataAllowed: false };
  let drops = 0;
  const log = createEventLog({ dir, rotateBytes: 1 << 20, keepBytes: 0, enabled: true, clock: () => Date.UTC(2026, 0, 1), onError: () => {}, onDrop: () => drops++ } as Parameters<typeof createEventLog>[0]);
  log.append({ type: 'bid', ts: 1, bidId: 'b1', campaignId: 'c', creativeId: 'k', priceCpmUsd: 2, pctr: 0.01, modelVersion: 'm', ctx } as Parameters<typeof log.append>[0]);
  // The turn's bid write: 100 bytes land, no newline yet.
  await new Promise((r) => setImmediate(r));
  log.append({ type: 'win', ts: 2, bidId: 'b1', campaignId: 'c', creativeId: 'k', priceCpmUsd: 1.5 } as Parameters<typeof log.append>[0]);
  finish();
  await log.close();
  const lines = readdirSync(dir).flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean));
  const readable = lines.flatMap((l) => {
    try {
      return [JSON.parse(l) as { type: string; bidId: string }];
    } catch {
      return [];
    }
  });
  expect(readable.map((r) => `${r.type}:${r.bidId}`)).toEqual(['win:b1']);
  // The bid record, cut short, is the one counted lost.
  expect(drops).toBe(1);
});
