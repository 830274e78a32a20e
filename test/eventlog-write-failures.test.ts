import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createEventLog } from '../src/eventlog/eventlog.js';
import { eventFiles, readEvents } from '../src/eventlog/read.js';
import type { EventRecord } from '../src/eventlog/records.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function read(dir: string) {
  let bad = 0;
  const got: EventRecord[] = [];
  for await (const r of readEvents(eventFiles([dir]), () => bad++)) got.push(r);
  return { got, bad };
}

const win = (bidId: string, ts: number) => ({ type: 'win' as const, ts, bidId, campaignId: 'acme-shoes', creativeId: 'x', priceCpmUsd: 20 });

const ctx = { requestId: 'r', impId: '1', exchange: 'default', isApp: false, siteOrAppId: 's1', publisherId: 'p', domain: 'news.example', categories: ['IAB12'], deviceType: 2, os: '', country: 'US', region: '', hour: 12, format: 'banner', w: 300, h: 250, dealId: '', userKey: '', segments: [], userDataAllowed: false };

/**
 * The disk fills while serving: a child process whose file size limit (RLIMIT_FSIZE, `ulimit -f`)
 * makes a write past the first kilobytes short, then EFBIG, as a full disk makes it short, then
 * ENOSPC. Each round: a turn of bids (one write, on the thread pool) and wins (a write each, on the
 * loop), then 6 s on the clock, past the 5 s bid records wait before a new file (a notice's record
 * waits 250 ms, so the wins of the same instant after a failure are held, and written by the
 * wait's timer, the next notice or close, in a later file). With BIDS_FIRST the bids' write ends
 * before the wins are appended (fs.write is wrapped to say when), and is the one the limit cuts
 * short.
 */
const CHILD = `
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
let wrote = () => {};
const realWrite = fs.write;
fs.write = (...a) => {
  const cb = a.pop();
  realWrite(...a, (...r) => (cb(...r), wrote()));
};
syncBuiltinESMExports();
const { createEventLog } = await import(process.env.EVENTLOG_MODULE);
const ctx = JSON.parse(process.env.CTX);
const bidsFirst = process.env.BIDS_FIRST === '1';
let now = Date.parse('2026-06-01T12:00:00Z');
let drops = 0, errors = 0, appended = 0;
const log = createEventLog({ dir: process.env.DIR, rotateBytes: 1 << 20, keepBytes: 0, enabled: true, clock: () => now, onError: () => errors++, onDrop: () => drops++ });
for (let round = 0; round < 4; round++) {
  for (let i = 0; i < (bidsFirst ? 16 : 6); i++, appended++) log.append({ type: 'bid', ts: now, bidId: 'b' + round + '-' + i, campaignId: 'acme-shoes', creativeId: 'x', priceCpmUsd: 2, pctr: 0.01, modelVersion: 'm', ctx });
  if (bidsFirst) await new Promise((r) => (wrote = r));
  for (let i = 0; i < 60; i++, appended++) log.append({ type: 'win', ts: now, bidId: 'w' + round + '-' + i, campaignId: 'acme-shoes', creativeId: 'x', priceCpmUsd: 20 });
  await new Promise((r) => setTimeout(r, 20));
  now += 6000;
}
await log.close();
process.stdout.write(JSON.stringify({ appended, drops, errors }));
`;

describe('event log write failures', () => {
  it.each([
    ['the wins', '0'],
    ['the bids', '1'],
  ])('a full disk, %s cut short: every record not on disk is counted dropped, and no torn line is left', async (_, bidsFirst) => {
    if (!existsSync('dist/eventlog/eventlog.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
    const dir = mkdtempSync(join(tmpdir(), 'eventlog-full-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'child.mjs'), CHILD);
    const events = join(dir, 'events');
    const out = execFileSync('sh', ['-c', `ulimit -f 8 && exec "${process.execPath}" "${join(dir, 'child.mjs')}"`], {
      encoding: 'utf8',
      env: { ...process.env, EVENTLOG_MODULE: pathToFileURL(resolve('dist/eventlog/eventlog.js')).href, DIR: events, CTX: JSON.stringify(ctx), BIDS_FIRST: bidsFirst },
    });
    const { appended, drops, errors } = JSON.parse(out) as { appended: number; drops: number; errors: number };
    const { got, bad } = await read(events);
    // Each round's file took some records before the limit, then the rest were refused; a file the
    // limit let take nothing is not left behind.
    const files = readdirSync(events);
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const f of files) expect(statSync(join(events, f)).size).toBeGreaterThan(0);
    expect(got.length).toBeGreaterThan(0);
    expect(drops).toBeGreaterThan(0);
    expect(errors).toBeGreaterThanOrEqual(4);
    expect(got.length + drops).toBe(appended);
    expect(bad).toBe(0);
  });

  it("a restart within the same second after a torn write starts a file of its own: the new process's first record is kept", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eventlog-torn-'));
    dirs.push(dir);
    const now = Date.parse('2026-06-01T12:00:00.100Z');
    // The killed process's file: one record, then a line the kill tore.
    writeFileSync(join(dir, 'events-20260601T120000-0.ndjson'), JSON.stringify(win('a', now)) + '\n{"type":"win","ts":1780315200001,"bidId":"b","campaignId":"acme-sh');
    const log = createEventLog({ dir, rotateBytes: 1 << 20, keepBytes: 0, enabled: true, clock: () => now + 700, onError: () => {}, onDrop: () => {} });
    log.append(win('c', now + 700));
    log.append(win('d', now + 701));
    await log.close();
    const { got, bad } = await read(dir);
    expect(got.map((r) => r.bidId)).toEqual(['a', 'c', 'd']);
    expect(bad).toBe(1);
    expect(readdirSync(dir).sort()).toEqual(['events-20260601T120000-0.ndjson', 'events-20260601T120000-1.ndjson']);
  });
});
