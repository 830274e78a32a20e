/**
 * Training rows from the bidder's NDJSON event log: every `bid` record that later got a `win`
 * (an impression) is a row, labelled 1 if a `click` for the same bid id arrived. Features are
 * rebuilt from the record's ctx and profile through the same builder the bid path used, so the
 * rows equal what the model saw at bid time. Rows are written as records stream in; only the bid
 * id → row map is kept in memory.
 */
import { readEvents } from '../eventlog/read.js';
import { prepareCreatives } from '../features/rows.js';
import type { FeatureBuilder } from '../features/features.js';
import type { Dataset } from './dataset.js';
import type { Campaign } from '../types.js';

export interface EventLogReadStats {
  lines: number;
  bids: number;
  wins: number;
  clicks: number;
  badLines: number;
  unknownCreatives: number;
}

export async function datasetFromEventLog(
  files: readonly string[],
  campaigns: readonly Campaign[],
  builder: FeatureBuilder,
): Promise<{ data: Dataset; stats: EventLogReadStats }> {
  const F = builder.spec.sparseFields;
  const D = builder.spec.denseDim;
  const prepared = prepareCreatives(campaigns, builder);
  let cap = 1 << 16;
  let { sparse, dense } = builder.allocate(cap);
  let won = new Uint8Array(cap);
  let clicked = new Uint8Array(cap);
  let rows = 0;
  const rowOf = new Map<string, number>();
  const stats: EventLogReadStats = { lines: 0, bids: 0, wins: 0, clicks: 0, badLines: 0, unknownCreatives: 0 };

  function grow() {
    cap *= 2;
    const next = builder.allocate(cap);
    next.sparse.set(sparse);
    next.dense.set(dense);
    ({ sparse, dense } = next);
    const w = new Uint8Array(cap);
    w.set(won);
    won = w;
    const c = new Uint8Array(cap);
    c.set(clicked);
    clicked = c;
  }

  // A line that does not parse (a torn last write) is counted and skipped.
  for await (const rec of readEvents(files, () => (stats.lines++, stats.badLines++))) {
    stats.lines++;
    if (rec.type === 'bid') {
      const pc = prepared.get(rec.creativeId);
      if (pc === undefined || typeof rec.ctx !== 'object' || rec.ctx === null) {
        stats.unknownCreatives++;
        continue;
      }
      if (rows === cap) grow();
      builder.writeRow(rec.ctx, pc, rec.profile, sparse, dense, rows);
      rowOf.set(rec.bidId, rows++);
      stats.bids++;
      continue;
    }
    const r = rowOf.get(rec.bidId);
    if (r === undefined) continue;
    // Duplicated notices are normal (exchanges retry); flags make them count once.
    if (rec.type === 'win' || rec.type === 'billing' || rec.type === 'impression') {
      if (!won[r]) stats.wins++;
      won[r] = 1;
    } else if (rec.type === 'click') {
      if (!clicked[r]) stats.clicks++;
      clicked[r] = 1;
      won[r] = 1;
    }
  }

  // Keep won rows only, in log order (time order), compacting in place.
  let out = 0;
  const labels = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    if (!won[r]) continue;
    if (out !== r) {
      sparse.copyWithin(out * F, r * F, r * F + F);
      dense.copyWithin(out * D, r * D, r * D + D);
    }
    labels[out] = clicked[r];
    out++;
  }
  return {
    data: {
      rows: out,
      sparse: sparse.subarray(0, out * F),
      dense: dense.subarray(0, out * D),
      labels: labels.subarray(0, out),
      truth: new Float32Array(out).fill(NaN),
    },
    stats,
  };
}
