import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { DEFAULT_SETTINGS } from '../src/config/settings.js';
import { eventFiles, readEvents } from '../src/eventlog/read.js';
import type { EventRecord } from '../src/eventlog/records.js';
import { createFeatureBuilder } from '../src/features/features.js';
import { datasetFromEventLog } from '../src/model/eventlog-data.js';
import { simulateEventLog } from '../src/sim/events.js';
import { createMarket } from '../src/sim/market.js';

/**
 * Event logs as rotation tools leave them: logrotate's `compress` gzips the older files
 * (`events-1.ndjson.gz`, `events.ndjson.1.gz`) next to the live plain one. A folder given must read
 * them all, and say which of its files it leaves out.
 */
const campaigns = loadPolicies('policies').campaigns;
const ndjson = (recs: readonly object[]) => recs.map((r) => `${JSON.stringify(r)}\n`).join('');
const closed = { noticeTtlMs: DEFAULT_SETTINGS.noticeTtlMs, untilMs: Infinity };

let dir: string;
let records: EventRecord[];
let first: EventRecord[];
let second: EventRecord[];

beforeAll(() => {
  if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
  dir = mkdtempSync(join(tmpdir(), 'eventlog-gzip-'));
  const market = createMarket({ seed: 5, worldSeed: 1, campaigns, requestsPerDay: 6_000 });
  records = [...simulateEventLog({ market, campaigns, builder: createFeatureBuilder() })];
  const half = Math.floor(records.length / 2);
  first = records.slice(0, half);
  second = records.slice(half);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function readAll(files: string[]) {
  const out: EventRecord[] = [];
  let bad = 0;
  for await (const r of readEvents(files, () => bad++)) out.push(r);
  return { out, bad };
}

describe('gzipped event logs', () => {
  it('reads a folder of one plain and one gzipped log, both whole', async () => {
    const d = join(dir, 'mixed');
    mkdirSync(d);
    writeFileSync(join(d, 'events-1.ndjson.gz'), gzipSync(ndjson(first)));
    writeFileSync(join(d, 'events-2.ndjson'), ndjson(second));
    const files = eventFiles([d], () => {});
    expect(files).toEqual([join(d, 'events-1.ndjson.gz'), join(d, 'events-2.ndjson')]);
    const { out, bad } = await readAll(files);
    expect(bad).toBe(0);
    expect(out).toEqual(records);
    // train and calibrate: every impression bought, wherever its bid and notices are.
    const { stats } = await datasetFromEventLog(files, campaigns, createFeatureBuilder(), closed);
    expect(stats).toMatchObject({ wins: new Set(records.filter((r) => r.type === 'win').map((r) => r.bidId)).size, badLines: 0, impressionsWithoutBid: 0 });
  });

  it("takes logrotate's numbered and dated names, and gzip by its bytes whatever the name", async () => {
    const d = join(dir, 'rotated');
    mkdirSync(d);
    writeFileSync(join(d, 'events.ndjson.1.gz'), gzipSync(ndjson(first.slice(0, 10))));
    writeFileSync(join(d, 'events.ndjson-20261205.gz'), gzipSync(ndjson(first.slice(10, 20))));
    writeFileSync(join(d, 'events.ndjson.2'), ndjson(first.slice(20, 30)));
    // Compressed by hand and kept its name.
    writeFileSync(join(d, 'events.ndjson'), gzipSync(ndjson(first.slice(30, 40))));
    const files = eventFiles([d], () => {});
    expect(files).toHaveLength(4);
    const { out, bad } = await readAll(files);
    expect(bad).toBe(0);
    expect(out).toHaveLength(40);
  });

  it('names each file of a folder it leaves out as no event log', () => {
    const d = join(dir, 'others');
    mkdirSync(join(d, 'w0'), { recursive: true });
    writeFileSync(join(d, 'events-1.ndjson'), ndjson(first));
    writeFileSync(join(d, 'notes.txt'), 'hello\n');
    writeFileSync(join(d, 'w0', 'events-1.ndjson.zst'), 'x');
    const skipped: string[] = [];
    expect(eventFiles([d], (f) => skipped.push(...f))).toEqual([join(d, 'events-1.ndjson')]);
    expect(skipped).toEqual([join(d, 'notes.txt'), join(d, 'w0', 'events-1.ndjson.zst')]);
  });

  it('stops at a truncated gzip with an error naming the file', async () => {
    const f = join(dir, 'events-9.ndjson.gz');
    const whole = gzipSync(ndjson(first));
    writeFileSync(f, whole.subarray(0, Math.floor(whole.length * 0.6)));
    await expect(readAll([f])).rejects.toThrow(new RegExp(`${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*truncated`));
  });

  it('refuses a log compressed some other way, naming the file, rather than skip its bytes as lines', async () => {
    const f = join(dir, 'events-9.ndjson.zst');
    writeFileSync(f, Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(64)]));
    await expect(readAll([f])).rejects.toThrow(/events-9\.ndjson\.zst.*zstd/);
  });

  it('report reads a folder with a gzipped log, says which file it left out, and stops at a truncated one naming it', () => {
    const d = join(dir, 'cli');
    mkdirSync(d);
    writeFileSync(join(d, 'events-1.ndjson.gz'), gzipSync(ndjson(first)));
    writeFileSync(join(d, 'events-2.ndjson'), ndjson(second));
    writeFileSync(join(d, 'README'), 'not a log\n');
    const report = spawnSync(process.execPath, ['dist/cli.js', 'report', '--json', '--events', d], { encoding: 'utf8', timeout: 60_000 });
    expect(report.status, report.stderr).toBe(0);
    expect(JSON.parse(report.stdout).records).toBe(records.length);
    expect(report.stderr).toContain(join(d, 'README'));

    const truncated = join(dir, 'cli-truncated');
    mkdirSync(truncated);
    const whole = gzipSync(ndjson(first));
    writeFileSync(join(truncated, 'events-1.ndjson.gz'), whole.subarray(0, whole.length - 100));
    const bad = spawnSync(process.execPath, ['dist/cli.js', 'report', '--json', '--events', truncated], { encoding: 'utf8', timeout: 60_000 });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain(join(truncated, 'events-1.ndjson.gz'));
    expect(bad.stderr).toMatch(/truncated/);
  });
});
