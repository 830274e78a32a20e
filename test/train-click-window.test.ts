import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { DEFAULT_SETTINGS } from '../src/config/settings.js';
import { eventFiles } from '../src/eventlog/read.js';
import type { EventRecord } from '../src/eventlog/records.js';
import { createFeatureBuilder } from '../src/features/features.js';
import { datasetFromEventLog } from '../src/model/eventlog-data.js';
import { simulateEventLog } from '../src/sim/events.js';
import { createMarket } from '../src/sim/market.js';
import { startBidder } from './helpers/bidder.js';

/**
 * The bidder counts a click on an ad that ran up to its bid's signed expiry, noticeTtlMs after the
 * bid, and then while its ledger remembers the bid (retention 2 x noticeTtlMs): 3 x noticeTtlMs in
 * all (since 792eef4). Rows read from a log before that are left out, counted, rather than labelled
 * 0 while their click can still come: they are the latest rows, those `train` holds out to stop and
 * calibrate on.
 */
const campaigns = loadPolicies('policies').campaigns;
const builder = createFeatureBuilder();
const TTL = DEFAULT_SETTINGS.noticeTtlMs;
const WINDOW = 3 * TTL;

describe('rows of impressions whose click can still be counted', () => {
  it('are left out of a running bidder\'s log until the click window closes, then labelled by the click that came in it', async () => {
    const t = await startBidder();
    try {
      const local = (u: string) => t.url + u.replace(/^https?:\/\/[^/]+/, '');
      const req = (id: string) => ({ id, at: 2, tmax: 5000, imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });
      const bidAt = t.clock();
      const b = (await (await t.bid(req('cw1'))).json()).seatbid[0].bid[0];
      expect((await fetch(local(b.nurl.replace('${AUCTION_PRICE}', '5').replace('${AUCTION_MIN_TO_WIN}', '')))).status).toBe(200);
      // The log is written asynchronously: read until it holds the records expected.
      const read = async (records: number, untilMs?: number) => {
        for (let i = 0; ; i++) {
          const r = await datasetFromEventLog(eventFiles([`${t.dir}/events`]), campaigns, builder, { noticeTtlMs: TTL, untilMs });
          if (r.stats.lines >= records || i === 100) return r;
          await new Promise((res) => setTimeout(res, 20));
        }
      };

      t.clock.advance(60_000);
      const early = await read(2);
      expect(early.data.rows).toBe(0);
      expect(early.stats).toMatchObject({ wins: 0, clickWindowOpen: 1, untilMs: bidAt });

      // The user clicks two minutes after the bid: within its expiry, so counted.
      t.clock.advance(60_000);
      const click = /href="([^"]+)"/.exec(b.adm)![1].replace(/&#38;/g, '&');
      expect((await fetch(local(click), { redirect: 'manual' })).status).toBe(302);
      expect(await t.metric('bidder_notices_total', { kind: 'click', result: 'ok' })).toBe(1);
      expect((await read(3)).stats).toMatchObject({ wins: 0, clickWindowOpen: 1 });
      // Told the log stands past the bid's click window, the row is in, with its click.
      const told = await read(3, bidAt + WINDOW + 1);
      expect([...told.data.labels]).toEqual([1]);

      // A record past the window (a later bid, not bought) closes it with no --until.
      t.clock.advance(WINDOW);
      expect((await t.bid(req('cw2'))).status).toBe(200);
      const closed = await read(4);
      expect([...closed.data.labels]).toEqual([1]);
      expect(closed.stats).toMatchObject({ wins: 1, clicks: 1, clickWindowOpen: 0, untilMs: bidAt + 2 * 60_000 + WINDOW, clickWindowMs: WINDOW });
    } finally {
      await t.close();
    }
  });

  it('stay out while a click past the notice expiry, on a bid the ledger still remembers, can still be counted: until 3 x noticeTtlMs after the bid', async () => {
    // Before: the window closed at noticeTtlMs, so at 1.5 TTLs the row was in, labelled 0, and the
    // click at 2 TTLs, counted by the bidder, came after its label was final.
    const ttl = 60_000;
    const t = await startBidder({ noticeTtlMs: ttl });
    try {
      const local = (u: string) => t.url + u.replace(/^https?:\/\/[^/]+/, '');
      const bidAt = t.clock();
      const b = (await (await t.bid({ id: 'late1', at: 2, tmax: 5000, imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } })).json()).seatbid[0].bid[0];
      expect((await fetch(local(b.nurl.replace('${AUCTION_PRICE}', '5').replace('${AUCTION_MIN_TO_WIN}', '')))).status).toBe(200);
      const read = async (records: number, untilMs: number) => {
        for (let i = 0; ; i++) {
          const r = await datasetFromEventLog(eventFiles([`${t.dir}/events`]), campaigns, builder, { noticeTtlMs: ttl, untilMs });
          if (r.stats.lines >= records || i === 100) return r;
          await new Promise((res) => setTimeout(res, 20));
        }
      };

      const early = await read(2, bidAt + 1.5 * ttl);
      expect(early.data.rows).toBe(0);
      expect(early.stats).toMatchObject({ wins: 0, clickWindowOpen: 1, clickWindowMs: 3 * ttl });

      // Clicked two TTLs after the bid, past its expiry: the ledger still remembers the bid, so it counts.
      t.clock.advance(2 * ttl);
      const r = await fetch(local(/href="([^"]+)"/.exec(b.adm)![1].replace(/&#38;/g, '&')), { redirect: 'manual' });
      expect(r.status).toBe(302);
      expect(new URL(r.headers.get('location')!).searchParams.get('rtbclk')).toBeTruthy();
      expect(await t.metric('bidder_clicks_total', { campaign: b.cid })).toBe(1);

      const late = await read(3, bidAt + 2.9 * ttl);
      expect(late.data.rows).toBe(0);
      expect(late.stats).toMatchObject({ wins: 0, clickWindowOpen: 1 });
      const closed = await read(3, bidAt + 3 * ttl + 1);
      expect([...closed.data.labels]).toEqual([1]);
      expect(closed.stats).toMatchObject({ wins: 1, clicks: 1, clickWindowOpen: 0 });
    } finally {
      await t.close();
    }
  });

  describe('in a simulated day\'s log', () => {
    let dir: string;
    let file: string;
    let records: EventRecord[];
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'click-window-'));
      records = [...simulateEventLog({ market: createMarket({ seed: 3, worldSeed: 1, campaigns, requestsPerDay: 30_000 }), campaigns, builder })];
      file = join(dir, 'day.ndjson');
      writeFileSync(file, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    const boughtBidTimes = (from: number) => {
      const bought = new Set(records.filter((r) => r.type === 'win').map((r) => r.bidId));
      return records.filter((r) => r.type === 'bid' && bought.has(r.bidId) && r.ts >= from).length;
    };

    it('leaves out the bought bids of the last 3 x noticeTtlMs before the newest record, the latest rows, and keeps the rest as a closed read labels them', async () => {
      const newest = Math.max(...records.map((r) => r.ts));
      const open = await datasetFromEventLog([file], campaigns, builder, { noticeTtlMs: TTL });
      const all = await datasetFromEventLog([file], campaigns, builder, { noticeTtlMs: TTL, untilMs: newest + WINDOW + 1 });
      expect(open.stats.untilMs).toBe(newest);
      expect(open.stats.clickWindowOpen).toBe(boughtBidTimes(newest - WINDOW));
      expect(open.stats.clickWindowOpen).toBeGreaterThan(0);
      expect(all.stats.clickWindowOpen).toBe(0);
      expect(open.data.rows).toBe(all.data.rows - open.stats.clickWindowOpen);
      // Rows are in bid-time order: those left out are the tail; the others are labelled alike.
      expect([...open.data.labels]).toEqual([...all.data.labels.subarray(0, open.data.rows)]);
      expect(open.stats.clicks).toBe(open.data.labels.reduce((s, y) => s + y, 0));
      // A longer TTL leaves more out.
      const hour = await datasetFromEventLog([file], campaigns, builder, { noticeTtlMs: 3_600_000 });
      expect(hour.stats.clickWindowOpen).toBe(boughtBidTimes(newest - 3 * 3_600_000));
      expect(hour.stats.clickWindowOpen).toBeGreaterThan(open.stats.clickWindowOpen);
    });

    it('calibrate --events takes noticeTtlMs from the policies\' bidder.yaml, and --until says when the log stands', () => {
      if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
      const models = join(dir, 'models');
      cpSync('models/lr-v3', join(models, 'lr-v3'), { recursive: true });
      const policies = join(dir, 'policies');
      cpSync('policies', policies, { recursive: true });
      appendFileSync(join(policies, 'bidder.yaml'), '\nnoticeTtlMs: 3600000\n');
      const cli = (...args: string[]) => spawnSync(process.execPath, ['dist/cli.js', 'calibrate', '--from', 'lr-v3', '--events', file, '--policies', policies, '--models', models, ...args], { encoding: 'utf8', timeout: 120_000 });
      const meta = (version: string) => JSON.parse(readFileSync(join(models, version, 'meta.json'), 'utf8')).data;
      const newest = Math.max(...records.map((r) => r.ts));

      const live = cli('--version', 'open');
      expect(live.status, live.stderr).toBe(0);
      expect(meta('open')).toMatchObject({ noticeTtlMs: 3_600_000, clickWindowMs: 10_800_000, untilMs: newest, clickWindowOpen: boughtBidTimes(newest - 10_800_000) });
      expect(live.stderr).toMatch(/^events: \d+ impressions bought less than 3 x noticeTtlMs \(10800000 ms\) before 2026-03-0\dT.* left out/m);

      const final = cli('--version', 'final', '--until', 'now');
      expect(final.status, final.stderr).toBe(0);
      expect(meta('final')).toMatchObject({ noticeTtlMs: 3_600_000, clickWindowOpen: 0 });
      expect(meta('final').rows).toBe(meta('open').rows + meta('open').clickWindowOpen);
    });
  });
});
