import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { DEFAULT_SETTINGS } from '../src/config/settings.js';
import { eventFiles } from '../src/eventlog/read.js';
import type { BidRecord, EventRecord } from '../src/eventlog/records.js';
import { createFeatureBuilder } from '../src/features/features.js';
import { prepareCreatives } from '../src/features/rows.js';
import { datasetFromEventLog } from '../src/model/eventlog-data.js';
import { simulateEventLog } from '../src/sim/events.js';
import { createMarket } from '../src/sim/market.js';

/**
 * Training and calibrating from the bidder's event logs as a fleet writes them: a folder with a
 * `w<i>/` per worker, where a notice lands at whichever worker the exchange reached, often not the
 * one that bid, and may be read before its bid.
 */
const campaigns = loadPolicies('policies').campaigns;
const ndjson = (recs: readonly EventRecord[]) => recs.map((r) => `${JSON.stringify(r)}\n`).join('');
// These logs are read as closed: every bid's click window has passed (test/train-click-window.test.ts reads them open).
const closed = { noticeTtlMs: DEFAULT_SETTINGS.noticeTtlMs, untilMs: Infinity };

let dir: string;
let records: EventRecord[];
let single: string;
let fleet: string;
let bought: Set<string>;
let clicked: Set<string>;
let lostBid: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'train-events-'));
  const market = createMarket({ seed: 3, worldSeed: 1, campaigns, requestsPerDay: 30_000 });
  records = [...simulateEventLog({ market, campaigns, builder: createFeatureBuilder() })];
  bought = new Set(records.filter((r) => r.type === 'win').map((r) => r.bidId));
  clicked = new Set(records.filter((r) => r.type === 'click').map((r) => r.bidId));
  lostBid = records.find((r) => r.type === 'loss')!.bidId;
  single = join(dir, 'single.ndjson');
  writeFileSync(single, ndjson(records));
  // Two workers; each bid's notices reach the other one, so w0 holds the notices of w1's bids
  // ahead of them, and a click on a lost bid (its markup shown by a page anyway) is in the log.
  const worker = new Map<string, number>();
  const files: EventRecord[][] = [[], []];
  for (const r of records) {
    if (r.type === 'bid') worker.set(r.bidId, worker.size % 2);
    files[r.type === 'bid' ? worker.get(r.bidId)! : 1 - worker.get(r.bidId)!].push(r);
  }
  files[0].push({ type: 'click', ts: Date.now(), bidId: lostBid, campaignId: 'x', creativeId: 'x' });
  fleet = join(dir, 'events');
  files.forEach((recs, w) => {
    mkdirSync(join(fleet, `w${w}`), { recursive: true });
    writeFileSync(join(fleet, `w${w}`, 'events-20261204T000000-0.ndjson'), ndjson(recs));
  });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('rows from event logs', () => {
  const builder = createFeatureBuilder();
  const F = builder.spec.sparseFields;
  const D = builder.spec.denseDim;
  const rowsAsText = (d: Awaited<ReturnType<typeof datasetFromEventLog>>['data']) =>
    Array.from({ length: d.rows }, (_, r) => `${d.sparse.subarray(r * F, r * F + F).join()}|${d.dense.subarray(r * D, r * D + D).join()}|${d.labels[r]}`).sort();

  it('joins bids and notices whatever the order the files are read in, as the report does', async () => {
    const one = await datasetFromEventLog([single], campaigns, builder, closed);
    const many = await datasetFromEventLog(eventFiles([fleet]), campaigns, builder, closed);
    expect(one.data.rows).toBe(bought.size);
    expect(one.stats.clicks).toBe(clicked.size);
    expect(one.data.labels.reduce((s, y) => s + y, 0)).toBe(clicked.size);
    expect(many.data.rows).toBe(bought.size);
    expect(many.stats).toMatchObject({ wins: bought.size, clicks: clicked.size, clicksWithoutImpression: 1, impressionsWithoutBid: 0 });
    expect(rowsAsText(many.data)).toEqual(rowsAsText(one.data));
  });

  it('labels a click only on a bought impression: a lost bid clicked is no row', async () => {
    const bid = records.find((r) => r.type === 'bid' && r.bidId === lostBid)!;
    const file = join(dir, 'lost-clicked.ndjson');
    writeFileSync(file, ndjson([bid, { type: 'loss', ts: bid.ts + 1, bidId: lostBid, campaignId: bid.campaignId, creativeId: bid.creativeId, lossReason: 102 }, { type: 'click', ts: bid.ts + 2, bidId: lostBid, campaignId: bid.campaignId, creativeId: bid.creativeId }]));
    const { data, stats } = await datasetFromEventLog([file], campaigns, builder, closed);
    expect(data.rows).toBe(0);
    expect(stats).toMatchObject({ bids: 1, wins: 0, clicks: 0, clicksWithoutImpression: 1 });
  });

  it('puts the rows in bid-time order across files, so the held-out rows are the latest of the fleet', async () => {
    // Workers that each logged half the day: w0 the second half, read first.
    const bids = records.filter((r) => r.type === 'bid' && bought.has(r.bidId));
    const late = bids.slice(bids.length >> 1);
    const split = join(dir, 'halves');
    mkdirSync(join(split, 'w0'), { recursive: true });
    mkdirSync(join(split, 'w1'), { recursive: true });
    const notices = (half: EventRecord[]) => {
      const ids = new Set(half.map((b) => b.bidId));
      return records.filter((r) => r.type === 'win' && ids.has(r.bidId));
    };
    writeFileSync(join(split, 'w0', 'e.ndjson'), ndjson([...late, ...notices(late)]));
    writeFileSync(join(split, 'w1', 'e.ndjson'), ndjson(bids.slice(0, bids.length >> 1)));
    writeFileSync(join(split, 'w1', 'f.ndjson'), ndjson(notices(bids.slice(0, bids.length >> 1))));
    const fromSplit = await datasetFromEventLog(eventFiles([split]), campaigns, builder, closed);
    const fromOne = await datasetFromEventLog([single], campaigns, builder, closed);
    expect(fromSplit.data.rows).toBe(bought.size);
    const tail = (d: typeof fromOne.data) => d.sparse.subarray((d.rows - 100) * F);
    expect(Array.from(tail(fromSplit.data))).toEqual(Array.from(tail(fromOne.data)));
  });
});

describe('rows whose creative is not the one the bid logged', () => {
  const builder = createFeatureBuilder();
  const bids = () => records.filter((r): r is BidRecord => r.type === 'bid');

  it('leaves out and counts the rows of a creative retitled since its bids; a log without fingerprints is used, counted unverified', async () => {
    const prepared = prepareCreatives(campaigns, builder);
    const file = join(dir, 'fingerprinted.ndjson');
    writeFileSync(file, ndjson(records.map((r) => (r.type === 'bid' ? { ...r, creativeFingerprint: prepared.get(r.creativeId)!.fingerprint } : r))));
    const asLogged = await datasetFromEventLog([file], campaigns, builder, closed);
    expect(asLogged.data.rows).toBe(bought.size);
    expect(asLogged.stats).toMatchObject({ changedCreatives: 0, unverifiedBids: 0, impressionsOfSkippedBids: 0 });

    const target = bids().find((b) => bought.has(b.bidId))!.creativeId;
    const retitled = campaigns.map((c) => ({ ...c, creatives: c.creatives.map((cr) => (cr.id === target ? { ...cr, title: `${cr.title}, now 20% off` } : cr)) }));
    const ofTarget = bids().filter((b) => b.creativeId === target);
    const boughtOfTarget = ofTarget.filter((b) => bought.has(b.bidId)).length;
    const changed = await datasetFromEventLog([file], retitled, builder, closed);
    expect(boughtOfTarget).toBeGreaterThan(0);
    expect(changed.data.rows).toBe(bought.size - boughtOfTarget);
    expect(changed.stats).toMatchObject({ bids: bids().length - ofTarget.length, changedCreatives: ofTarget.length, impressionsOfSkippedBids: boughtOfTarget, unverifiedBids: 0 });

    const unmarked = join(dir, 'unmarked.ndjson');
    writeFileSync(unmarked, ndjson(records.map((r) => (r.type === 'bid' ? { ...r, creativeFingerprint: undefined } : r))));
    const older = await datasetFromEventLog([unmarked], retitled, builder, closed);
    expect(older.data.rows).toBe(bought.size);
    expect(older.stats).toMatchObject({ changedCreatives: 0, unverifiedBids: bids().length });
  });

  it('counts a line that is JSON but no record, or a bid whose context or profile is not as logged, as a bad line', async () => {
    const bid = bids().find((b) => bought.has(b.bidId) && b.profile !== undefined)!;
    const win = (bidId: string) => JSON.stringify({ type: 'win', ts: bid.ts + 1, bidId, campaignId: bid.campaignId, creativeId: bid.creativeId, priceCpmUsd: 1 });
    const malformed: Partial<Record<keyof BidRecord, unknown>>[] = [
      { ctx: { exchange: 'x', hour: 3 } },
      { ctx: { ...bid.ctx, categories: null } },
      { ctx: { ...bid.ctx, segments: 'IAB1' } },
      { ctx: { ...bid.ctx, categories: [7] } },
      { ctx: { ...bid.ctx, deviceType: '4' } },
      { ctx: { ...bid.ctx, userDataAllowed: 1 } },
      { profile: null },
      { profile: {} },
      { profile: { ...bid.profile, campaignImpressions: null } },
      { ts: 'yesterday' },
    ];
    const lines = ['null', '[]', '5', '"bid"', '{}', '{"type":"bid"}', '{"type":"win","bidId":7}', JSON.stringify(bid), win(bid.bidId)];
    malformed.forEach((over, i) => lines.push(JSON.stringify({ ...bid, bidId: `bad-${i}`, ...over }), win(`bad-${i}`)));
    const file = join(dir, 'malformed.ndjson');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const { data, stats } = await datasetFromEventLog([file], campaigns, builder, closed);
    expect(data.rows).toBe(1);
    expect(stats).toMatchObject({ badLines: 7 + malformed.length, bids: 1, impressionsWithoutBid: 0, impressionsOfMalformedBids: malformed.length });
  });
});

/** The commands as a user runs them: the built CLI, a models folder of its own. */
describe('bidder train and calibrate --events, and eval, refusing what they cannot judge', () => {
  let models: string;
  beforeAll(() => {
    if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
    models = join(dir, 'models');
    cpSync('models/lr-v3', join(models, 'lr-v3'), { recursive: true });
    // A model whose calibration bias is NaN (the last float of weights.bin): it loads, and every CTR it predicts is NaN.
    cpSync('models/lr-v3', join(models, 'nan-calib'), { recursive: true });
    const weights = join(models, 'nan-calib', 'weights.bin');
    const fd = openSync(weights, 'r+');
    writeSync(fd, new Uint8Array(new Float32Array([NaN]).buffer), 0, 4, statSync(weights).size - 4);
    closeSync(fd);
    cpSync('models/lr-v3', join(models, 'no-meta'), { recursive: true });
    rmSync(join(models, 'no-meta', 'meta.json'));
  });

  const cli = (...args: string[]) => spawnSync(process.execPath, ['dist/cli.js', ...args, '--models', models], { encoding: 'utf8', timeout: 120_000 });
  // What a command says of itself, no stack: its notes on stderr ('backend: ...', 'events: ...') are not it.
  const said = (stderr: string) => {
    expect(stderr).not.toMatch(/^\s+at /m);
    return stderr.split('\n').filter((l) => l.startsWith('bidder:'));
  };
  const meta = (version: string) => JSON.parse(readFileSync(join(models, version, 'meta.json'), 'utf8'));

  it('train --events reads a fleet folder (w<i>/ per worker) and joins its notices across files', () => {
    const run = cli('train', '--events', fleet, '--epochs', '1', '--validation', '0.25', '--version', 'from-fleet');
    expect(run.status, run.stderr).toBe(0);
    // The simulated log carries creative fingerprints, as the bidder's does: every row is checked.
    expect(meta('from-fleet').data).toMatchObject({ rows: bought.size, clicks: clicked.size, clicksWithoutImpression: 1, unverifiedBids: 0, changedCreatives: 0, files: eventFiles([fleet]) });
    // What is learnt is not this test's question: one epoch on a day's log does not reliably beat
    // chance (0.4999 seen once on CI's machine, where wasm training is not bit-for-bit repeatable).
    const auc = JSON.parse(run.stdout).validation.auc;
    expect(auc).toBeGreaterThanOrEqual(0);
    expect(auc).toBeLessThanOrEqual(1);
  });

  it('reads a file named twice, or again through a link, once', () => {
    const link = join(dir, 'link.ndjson');
    symlinkSync(single, link);
    const run = cli('train', '--events', single, single, link, '--until', 'now', '--epochs', '1', '--validation', '0.25', '--version', 'from-dupes');
    expect(run.status, run.stderr).toBe(0);
    expect(meta('from-dupes').data).toMatchObject({ rows: bought.size, clicks: clicked.size, files: [single] });
  });

  it('refuses, in one line, to train or calibrate on too few clicks to fit and judge the model', () => {
    const few = join(dir, 'few.ndjson');
    // The first 2,000 records: a few dozen impressions, and a click or two.
    writeFileSync(few, ndjson(records.slice(0, 2000)));
    const train = cli('train', '--events', few, '--version', 'few');
    expect(train.status).toBe(1);
    expect(said(train.stderr)).toEqual([expect.stringMatching(/^bidder: not enough data to train: the training split has \d+ clicks? in \d+ rows, at least 100 needed$/)]);
    expect(existsSync(join(models, 'few'))).toBe(false);
    // Enough to train on, not to judge: the held-out 1 % has a few clicks.
    const held = cli('train', '--events', single, '--validation', '0.01', '--version', 'few-held-out');
    expect(held.status).toBe(1);
    expect(said(held.stderr)).toEqual([expect.stringMatching(/^bidder: not enough data to train: the validation split .* at least 30 needed$/)]);
    const cal = cli('calibrate', '--from', 'lr-v3', '--events', few, '--version', 'few-cal');
    expect(cal.status).toBe(1);
    expect(said(cal.stderr)).toEqual([expect.stringMatching(/^bidder: not enough data to calibrate: .* at least 30 needed$/)]);
    expect(existsSync(join(models, 'few-cal'))).toBe(false);
  });

  it('saves no model whose parameters are not finite', () => {
    // Refused where the loader checks the weights (exit 2), else when the calibration comes out NaN (exit 1).
    const cal = cli('calibrate', '--from', 'nan-calib', '--events', fleet, '--version', 'nan-cal');
    expect([1, 2]).toContain(cal.status);
    expect(said(cal.stderr)).toHaveLength(1);
    expect(existsSync(join(models, 'nan-cal'))).toBe(false);
    // A step that large sends the weights to NaN in the first epoch: there are no better ones to go back to.
    const diverged = cli('train', '--rows', '30000', '--epochs', '1', '--batch-size', '64', '--learning-rate', '1e38', '--version', 'diverged');
    expect(diverged.status).toBe(1);
    expect(said(diverged.stderr)).toEqual([expect.stringMatching(/^bidder: training diverged .* nothing saved/)]);
    expect(existsSync(join(models, 'diverged'))).toBe(false);
  });

  it('eval fails in one line on a model whose CTRs are not probabilities, on a day without clicks, and on a model it cannot load', () => {
    const nan = cli('eval', '--json', '--model', 'nan-calib', '--baseline', 'lr-v3', '--rows', '2000');
    expect([1, 2]).toContain(nan.status);
    expect(nan.stdout).toBe('');
    expect(said(nan.stderr)).toHaveLength(1);
    // A day too short to hold a click: AUC has nothing to rank.
    const empty = cli('eval', '--json', '--market', 'ipinyou', '--model', 'lr-v3', '--baseline', 'lr-v3', '--rows', '100');
    expect(empty.status).toBe(1);
    expect(said(empty.stderr)).toEqual(['bidder: the simulated day has 0 clicks in 100 rows: AUC is undefined; evaluate on more --rows']);
    for (const args of [['eval', '--model', 'no-meta', '--baseline', 'lr-v3', '--rows', '2000'], ['eval', '--model', 'lr-v3', '--baseline', 'missing', '--rows', '2000'], ['calibrate', '--from', 'no-meta', '--version', 'x', '--rows', '2000']]) {
      const run = cli(...args);
      expect(run.status, args.join(' ')).toBe(2);
      expect(said(run.stderr)).toEqual([expect.stringMatching(/^bidder: cannot load model (no-meta|missing)( from \S+)?: .+$/)]);
    }
  });
});
