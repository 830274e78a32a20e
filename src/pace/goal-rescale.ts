/**
 * A change of what a campaign's opportunities are worth (a reload's new goal, or a restart's
 * learned hour values written under another goal): the values its pace learnt move by the same
 * factor (value-pacer.ts's `configure`, value-restore.ts). A function of a `Pace` (pace-state.ts)
 * and the pacer's calibration, whose pCVR the bid path prices a CPA goal's value at.
 */
import type { Goal } from '../types.js';
import { baseCvr } from '../price/price.js';
import type { Calibration } from './calibration.js';
import { BINS, BINS_PER_DECADE } from './landscape.js';
import type { PacedCampaign } from './pacer.js';
import type { Pace } from './pace-state.js';

/** ln of one value bin's width. */
const BIN_STEP = Math.log(10) / BINS_PER_DECADE;

/**
 * What an opportunity is worth per unit of pCTR under `g` (src/price/price.ts `valueCpmUsd`, over
 * 1000): the value per click, times for a CPA goal the pCVR the bid path prices `creatives` at
 * (their calibration of its base, src/price/choose.ts), their geometric mean. NaN for a CPM goal,
 * whose value is not in pCTR at all.
 */
function valuePerCtr(g: Goal, creatives: readonly { id: string }[] | undefined, calibration: Pick<Calibration, 'calibratePcvr'>): number {
  if (g.type === 'cpm') return NaN;
  if (g.type === 'cpc') return g.valueUsd;
  const base = baseCvr({ goal: g });
  if (creatives === undefined || creatives.length === 0) return g.valueUsd * base;
  let ln = 0;
  for (const cr of creatives) ln += Math.log(calibration.calibratePcvr(cr.id, base, false));
  return g.valueUsd * Math.exp(ln / creatives.length);
}

/**
 * A reload that changed what the campaign's opportunities are worth (its goal's value, its CPA
 * base rate, cpc against cpa): the values learnt, which the plan spends on for the rest of the
 * day and fade over 12 hours, are moved by the same factor in log, the hours' moments with them
 * (their fit standardises the histogram's values, so both move alike). Left as they were, a value
 * doubled at noon planned on half of it and spent the budget by 19:00-20:00 (afternoon value
 * 15.5-15.9 where a campaign added then bought 19.5-20.0), halved left 1.1-1.2 of 6 USD unspent.
 * Between a CPM goal and one in pCTR no factor holds: what was learnt is dropped.
 *
 * `hoursOnly`: the hour-value moments alone, as a restart restores them from learned.json under
 * the goal they were written at; the value histogram then holds only values seen since the
 * start, at the goal in force.
 */
export function rescale(p: Pace, c: PacedCampaign, calibration: Pick<Calibration, 'calibratePcvr'>, hoursOnly = false): void {
  const before = p.goal;
  const after = c.goal;
  p.goal = after;
  if (before === undefined || after === undefined) return;
  const sameCvr = after.type !== 'cpa' || baseCvr({ goal: before }) === baseCvr({ goal: after });
  if (before.type === after.type && before.valueUsd === after.valueUsd && sameCvr) return;
  const cpm = before.type === 'cpm' && after.type === 'cpm';
  const factor = cpm ? after.valueUsd / before.valueUsd : valuePerCtr(after, c.creatives, calibration) / valuePerCtr(before, c.creatives, calibration);
  const active = p.hourValues.active;
  const moments = p.hourValues.moments();
  if (!(factor > 0 && Number.isFinite(factor))) {
    if (!hoursOnly) {
      p.values.w.fill(0);
      p.values.total = 0;
    }
    if (moments !== undefined) p.hourValues.restore(moments.fill(0));
    p.hourValues.clear();
    return;
  }
  const d = Math.log(factor);
  if (!hoursOnly) {
    const w = p.values.w;
    const moved = new Float64Array(BINS);
    // Bin 0 holds the values at or under the grid's floor, taken as they are (hour-values.ts).
    moved[0] = w[0];
    for (let k = 1; k < BINS; k++) {
      if (!(w[k] > 0)) continue;
      const x = k + d / BIN_STEP;
      const j = Math.floor(x);
      const f = x - j;
      moved[Math.min(BINS - 1, Math.max(1, j))] += (1 - f) * w[k];
      if (f > 0) moved[Math.min(BINS - 1, Math.max(1, j + 1))] += f * w[k];
    }
    w.set(moved);
  }
  if (moments === undefined) return;
  // Per hour the moments of ln(value) + d: weight, Σx, Σx², Σx³, Σx⁴ (hour-values.ts).
  for (let i = 0; i < moments.length; i += 5) {
    const [n, s1, s2, s3, s4] = moments.slice(i, i + 5);
    moments[i + 1] = s1 + n * d;
    moments[i + 2] = s2 + 2 * d * s1 + n * d ** 2;
    moments[i + 3] = s3 + 3 * d * s2 + 3 * d ** 2 * s1 + n * d ** 3;
    moments[i + 4] = s4 + 4 * d * s3 + 6 * d ** 2 * s2 + 4 * d ** 3 * s1 + n * d ** 4;
  }
  p.hourValues.restore(moments);
  // Refitted there: a pace that plans without the hours' fit (no day learnt) keeps learning values as they are.
  if (!active) p.hourValues.clear();
}
