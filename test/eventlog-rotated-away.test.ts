import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { eventFiles, readEvents } from '../src/eventlog/read.js';
import type { EventRecord } from '../src/eventlog/records.js';
import { createFeatureBuilder } from '../src/features/features.js';
import { datasetFromEventLog } from '../src/model/eventlog-data.js';
import { simulateEventLog } from '../src/sim/events.js';
import { createMarket } from '../src/sim/market.js';

/**
 * A running bidder removes its oldest event-log files at each rotation (`eventLog.keepBytes`);
 * under `--workers` each worker rotates on its own, so `report`, `train --events` and
 * `calibrate --events` reading the folder find files listed a moment ago gone. Such a file is
 * skipped and counted, never the end of the read.
 */
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rotated-away-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const ndjson = (recs: readonly EventRecord[]) => recs.map((r) => `${JSON.stringify(r)}\n`).join('');

describe('an event-log file rotated away while the log is read', () => {
  it('is skipped and counted by readEvents once listed, and the other files are still read', async () => {
    for (const w of ['w0', 'w1']) {
      mkdirSync(join(dir, w));
      writeFileSync(join(dir, w, 'events-20260601T120000-0.ndjson'), `{"type":"bid","ts":1,"bidId":"${w}"}\n`);
    }
    const files = eventFiles([dir]);
    // w0's reader is still on its files when worker 1 rotates and removes its oldest.
    rmSync(files[1]);
    const ids: string[] = [];
    const gone: string[] = [];
    for await (const r of readEvents(files, () => {}, (f) => gone.push(f))) ids.push(r.bidId);
    expect(ids).toEqual(['w0']);
    expect(gone).toEqual([files[1]]);
  });

  it('is left out by eventFiles when gone between the folder listing it and the look at it', () => {
    mkdirSync(join(dir, 'w0'));
    writeFileSync(join(dir, 'w0', 'b.ndjson'), '');
    // A name the folder lists that no longer leads to a file: what stat meets once pruning won the race.
    symlinkSync(join(dir, 'w0', 'pruned.ndjson'), join(dir, 'w0', 'a.ndjson'));
    expect(eventFiles([dir])).toEqual([join(dir, 'w0', 'b.ndjson')]);
  });

  it('is counted in the training stats, and the rows of the files still there are made', async () => {
    const campaigns = loadPolicies('policies').campaigns;
    const builder = createFeatureBuilder();
    const records = [...simulateEventLog({ market: createMarket({ seed: 5, worldSeed: 1, campaigns, requestsPerDay: 2_000 }), campaigns, builder })];
    mkdirSync(join(dir, 'w0'));
    mkdirSync(join(dir, 'w1'));
    writeFileSync(join(dir, 'w0', 'e.ndjson'), ndjson(records));
    writeFileSync(join(dir, 'w1', 'e.ndjson'), ndjson(records.slice(0, 10)));
    const files = eventFiles([dir]);
    const whole = await datasetFromEventLog([files[0]], campaigns, builder);
    rmSync(files[1]);
    const { data, stats } = await datasetFromEventLog(files, campaigns, builder);
    expect(stats.filesGone).toBe(1);
    expect(data.rows).toBe(whole.data.rows);
    expect(data.rows).toBeGreaterThan(0);
  });
});
