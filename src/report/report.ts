import type { Campaign } from '../types.js';
import type { EventRecord } from '../eventlog/records.js';
import { compileBudget, NO_LIMIT, pacedDayBudgetUsd, toMicros, toUsd, utcDay } from '../ledger/budget.js';
import { outcomeValueUsd } from '../price/price.js';
import { BID, byKey, CLICKED, confirms, CONVERTED, inDays, tallyOf, type Days, type LogTally } from './tally.js';

/** Counts for one slice (campaign × day × hour, or wider). */
interface Acc {
  bids: number;
  impressions: number;
  clicks: number;
  conversions: number;
  spendUsd: number;
  /** The part of spendUsd billed past the budget (late wins with no room left), as the ledger counts it apart. */
  overspendUsd: number;
  /** Sum of the model's pCTR over won impressions: the clicks the model expected. */
  predictedClicks: number;
}

/**
 * Ad-effect figures for one slice: the counts and the rates derived from them. A rate with nothing
 * to divide by (no impression, click, conversion or spend) is null, not 0: a CPC of 0 reads as free.
 */
export interface Effect extends Acc {
  ctr: number | null;
  cvr: number | null;
  cpcUsd: number | null;
  cpaUsd: number | null;
  /** Return on investment: (value − spend) / spend, the value of the outcomes at the campaign's goal price net of their cost; −1 lost all, 0 broke even. */
  roi: number | null;
  /** Return on ad spend: value / spend, roi + 1 (the figure this report called ROI before). */
  roas: number | null;
}

export interface CampaignReport {
  id: string;
  totals: Effect;
  /**
   * A flight with a lifetime budget whose first day is before the log's first record (or that has
   * no start): what it spent before the log is unknown, and the days' `targetSpendUsd` count only the
   * spend the log records (`spentBeforeUsd`), so they are what the bidder paced to only if nothing
   * was spent before the log, and otherwise above it. False where the log covers the flight (the
   * targets are the bidder's) or the budget has no lifetime cap (the target is the daily budget).
   */
  spendBeforeLogUnknown: boolean;
  /**
   * Bids whose win or billing notice was refused past the bid's retention (410 NOTICE_EXPIRED: the
   * ledger no longer knew the bid, so nothing was recorded): billed by the exchange, in no count
   * above. Once per bid, however many of its notices were refused, at its billing's price over
   * its win's; one the log records as won (another bidder of a fleet settled it) is spend above.
   */
  refusedLate: { notices: number; billedUsd: number };
  days: Array<{
    day: string;
    totals: Effect;
    /**
     * What the bidder paced to that day (`bidder_spend_target_usd` at the day's end):
     * `pacedDayBudgetUsd` of the campaign's budget, the daily budget, or for a flight with a
     * lifetime budget what it had left after `spentBeforeUsd`, spread over its days left, at most
     * the daily budget; 0 outside the flight or for a campaign the policies no longer hold. (The
     * gauge itself reads what a paused campaign spent; this figure is the budget it paced to.)
     */
    targetSpendUsd: number;
    /**
     * The campaign's spend (overspend included, as the ledger counts it) that the log records on
     * the days before this one, `--since` aside: what a lifetime budget's target is figured from.
     */
    spentBeforeUsd: number;
    /** `meanLambda`: the mean λ (1 / pacing multiplier) of the hour's bids, null when none recorded it. */
    hours: Array<{ hour: number; effect: Effect; cumulativeSpendUsd: number; cumulativeTargetUsd: number; meanLambda: number | null }>;
  }>;
}

export interface Report {
  campaigns: CampaignReport[];
  records: number;
  badLines: number;
  /** Log files listed and removed before they were read (rotated away by a running bidder): their records are not in the report. */
  filesGone: number;
  /**
   * Clicks and conversions on bids with no impression in the log (no win, billing or render
   * notice): no spend was recorded for them, so they are left out of every rate and said here.
   */
  withoutImpression: { clicks: number; conversions: number };
}

const zero = (): Acc => ({ bids: 0, impressions: 0, clicks: 0, conversions: 0, spendUsd: 0, overspendUsd: 0, predictedClicks: 0 });

function effect(a: Acc, c: Campaign | undefined): Effect {
  // A campaign no longer in the policies has no goal to value its outcomes at: its ROI and ROAS are unknown, not 0.
  const value = !c ? NaN : outcomeValueUsd(c.goal, a.impressions, a.clicks, a.conversions);
  // Sums of micro-dollar prices, given back in micro-dollars (without the float sums' 0.009000000000000001).
  const spendUsd = toUsd(Math.round(a.spendUsd * 1e6));
  return {
    ...a,
    spendUsd,
    overspendUsd: toUsd(Math.round(a.overspendUsd * 1e6)),
    ctr: a.impressions ? a.clicks / a.impressions : null,
    cvr: a.clicks ? a.conversions / a.clicks : null,
    cpcUsd: a.clicks ? spendUsd / a.clicks : null,
    cpaUsd: a.conversions ? spendUsd / a.conversions : null,
    roi: spendUsd && !Number.isNaN(value) ? (value - spendUsd) / spendUsd : null,
    roas: spendUsd && !Number.isNaN(value) ? value / spendUsd : null,
  };
}

/**
 * Aggregate an event log into the ad-effect report: per campaign, per UTC day and hour. A bid's
 * later notices are attributed to the hour of the bid (when the impression was bought). A markup
 * impression, the win and the billing notice all mark the impression; it counts once, at the price
 * of the most authoritative of them (billing over win over the markup's, which is the bid; a win or
 * billing notice whose price was unreadable has the markup's; of two billings, the one that
 * corrected the other's confirmation), rounded to the micro-dollar, as the ledger settles it.
 * Clicks and conversions count on bought impressions only.
 *
 * The logs of several bidders (a fleet, `--workers`) are read one after the other, and a notice
 * may be in another's log than its bid, before it: the tally keeps what each record says, and the
 * bids, then the impressions, then the clicks and conversions are counted here, after the last
 * record. A bid counts once, however many times its record was read (a log given twice, or a copy
 * of it), as its notices do. Records that are not placeable were left out and are counted in
 * badLines. `days`: only the bids of those UTC days are counted, with their notices whenever these
 * came (a notice whose bid is not in the log, at its own time).
 */
export function reportOf(t: LogTally, campaigns: readonly Campaign[], badLines = 0, filesGone = 0, days?: Days): Report {
  const byId = new Map(campaigns.map((c) => [c.id, c]));
  const { f, ts, pctr, imps } = t;
  // Per bid won, by slot: the level of the report whose price stands (impression 0, win 1, billing
  // 2, as the ledger ranks them) and that price, in the cell it was counted in; in the order won.
  const wonLevel = new Int8Array(t.bids).fill(-1);
  const wonUsd = new Float64Array(t.bids);
  const wonOver = new Uint8Array(t.bids);
  const wonAt: Array<Acc | undefined> = new Array(t.bids);
  // The campaign index and UTC day each won bid's spend is the ledger's, whatever `days` counts:
  // a lifetime budget's target is figured from the spend of the days before.
  const wonC = new Int32Array(t.bids);
  const wonDay = new Float64Array(t.bids);
  const wonOrder: number[] = [];
  const withoutImpression = { clicks: 0, conversions: 0 };
  // campaign -> day -> hour -> acc
  const cells = new Map<string, Map<string, Acc[]>>();
  // Out of `days`: counted in a cell no row reads.
  const outside = zero();
  const cell = (campaignId: string, at: number): Acc => {
    if (!inDays(days, at)) return outside;
    let byDay = cells.get(campaignId);
    if (!byDay) cells.set(campaignId, (byDay = new Map()));
    const day = new Date(at).toISOString().slice(0, 10);
    let hours = byDay.get(day);
    if (!hours) byDay.set(day, (hours = Array.from({ length: 24 }, zero)));
    return hours[new Date(at).getUTCHours()];
  };
  // λ of the bids per cell, kept beside the summed counts.
  const lambdas = new Map<Acc, { sum: number; n: number }>();
  for (let i = 0; i < t.orderLength; i++) {
    const s = t.order[i];
    const at = cell(t.campaign(t.c[s]), ts[s]);
    at.bids++;
    const m = t.multiplier[s];
    if (m > 0) {
      const l = lambdas.get(at) ?? { sum: 0, n: 0 };
      l.sum += 1 / m;
      l.n++;
      lambdas.set(at, l);
    }
  }
  for (let i = 0; i < imps.length; i++) {
    const s = imps.slot[i];
    const level = imps.level[i];
    // A billing within a micro-dollar of the price that stood confirmed it, and the ledger kept
    // that price (the event log has the billing at the exchange's own).
    let usd = imps.usd[i];
    if (level === 2) {
      const unbilledUsd = toUsd(toMicros(t.unbilledCpm[s] / 1000));
      if (confirms(usd, unbilledUsd)) usd = unbilledUsd;
    }
    const bid = (f[s] & BID) !== 0;
    if (wonLevel[s] < 0) {
      const atMs = bid ? ts[s] : imps.ts[i];
      const at = cell(t.campaign(imps.c[i]), atMs);
      wonC[s] = imps.c[i];
      wonDay[s] = utcDay(atMs);
      wonLevel[s] = level;
      wonUsd[s] = usd;
      wonOver[s] = imps.over[i];
      wonAt[s] = at;
      wonOrder.push(s);
      at.impressions++;
      at.spendUsd += usd;
      at.predictedClicks += bid ? pctr[s] : 0;
    } else {
      // Past the budget if any of its records says so (a billing that raised the price past it, in
      // whichever log is read first), as the ledger keeps it.
      wonOver[s] |= imps.over[i];
      // A billing that corrected a confirmed one (same level: the confirmation kept the win's)
      // stands over it, whichever is read first (LogTally.standingBilling).
      if (level > wonLevel[s] || (level === 2 && wonLevel[s] === 2 && i === t.standingBilling(s))) {
        // A more authoritative report set the price again (docs/money.md, "Who sets the price"), in
        // the column the first one was counted in, as the ledger does.
        wonAt[s]!.spendUsd += usd - wonUsd[s];
        wonLevel[s] = level;
        wonUsd[s] = usd;
      }
    }
  }
  for (const s of wonOrder) if (wonOver[s]) wonAt[s]!.overspendUsd += wonUsd[s];
  // Campaign -> UTC day -> spend in micro-dollars, of every day in the log.
  const spentByDay = new Map<string, Map<number, number>>();
  for (const s of wonOrder) {
    const id = t.campaign(wonC[s]);
    let byDay = spentByDay.get(id);
    if (!byDay) spentByDay.set(id, (byDay = new Map()));
    byDay.set(wonDay[s], (byDay.get(wonDay[s]) ?? 0) + Math.round(wonUsd[s] * 1e6));
  }
  const logStartDay = utcDay(firstRecordMs(t));
  for (let s = 0; s < t.bids; s++) {
    if (!(f[s] & (CLICKED | CONVERTED))) continue;
    const at = wonAt[s];
    if (at === undefined) {
      // No impression: said apart, for the bids of the days counted (by the bid's time, or where
      // its record is not in the log, the first of its records').
      if (!inDays(days, ts[s])) continue;
      if (f[s] & CLICKED) withoutImpression.clicks++;
      if (f[s] & CONVERTED) withoutImpression.conversions++;
    } else {
      if (f[s] & CLICKED) at.clicks++;
      if (f[s] & CONVERTED) at.conversions++;
    }
  }
  // In micro-dollars, as the ledger would have settled them; by the bid's time, as its impression.
  const refused = new Map<string, { notices: number; micros: number }>();
  for (let s = 0; s < t.bids; s++) {
    if (t.refusedLevel[s] === 0 || wonLevel[s] >= 0) continue;
    const id = t.campaign(t.refusedC[s]);
    // cell() also lists the campaign where no bid of it is in the log.
    if (cell(id, f[s] & BID ? ts[s] : t.refusedTs[s]) === outside) continue;
    const r = refused.get(id) ?? { notices: 0, micros: 0 };
    r.notices++;
    r.micros += Math.round(t.refusedUsd[s] * 1e6);
    refused.set(id, r);
  }
  const out: CampaignReport[] = [];
  for (const [id, byDay] of [...cells].sort(byKey)) {
    const c = byId.get(id);
    const rule = c && compileBudget(c.id, c.budget);
    const spent = spentByDay.get(id);
    const total = zero();
    const dayRows: CampaignReport['days'] = [];
    for (const [day, hours] of [...byDay].sort(byKey)) {
      const dayAcc = zero();
      const d = utcDay(Date.parse(`${day}T00:00:00Z`));
      let beforeMicros = 0;
      if (spent) for (const [k, micros] of spent) if (k < d) beforeMicros += micros;
      const spentBeforeUsd = toUsd(beforeMicros);
      const target = rule ? pacedDayBudgetUsd(rule, d, spentBeforeUsd) : 0;
      // In micro-dollars, as effect() gives each hour's spend: summed in dollars, wins of 0.1 and 0.2 came to 0.30000000000000004.
      let cumMicros = 0;
      const hourRows = hours.map((h, hour) => {
        for (const k of Object.keys(dayAcc) as Array<keyof Acc>) dayAcc[k] += h[k];
        cumMicros += Math.round(h.spendUsd * 1e6);
        // The target is the even curve (budget × fraction of the day), a reference: max-value pacing may spend unevenly.
        const l = lambdas.get(h);
        return { hour, effect: effect(h, c), cumulativeSpendUsd: toUsd(cumMicros), cumulativeTargetUsd: (target * (hour + 1)) / 24, meanLambda: l ? l.sum / l.n : null };
      });
      for (const k of Object.keys(total) as Array<keyof Acc>) total[k] += dayAcc[k];
      dayRows.push({ day, totals: effect(dayAcc, c), targetSpendUsd: target, spentBeforeUsd, hours: hourRows });
    }
    const r = refused.get(id);
    // The ledger counts a flight's spend from its first day; a log starting later misses what came before.
    const spendBeforeLogUnknown = rule !== undefined && rule.lifetimeMicros < NO_LIMIT && logStartDay > rule.startDay;
    out.push({ id, totals: effect(total, c), spendBeforeLogUnknown, refusedLate: { notices: r?.notices ?? 0, billedUsd: toUsd(r?.micros ?? 0) }, days: dayRows });
  }
  return { campaigns: out, records: t.records, badLines: badLines + t.unplaced, filesGone, withoutImpression };
}

/** The time of the log's first record (the earliest of the times the tally keeps), in epoch ms. */
function firstRecordMs(t: LogTally): number {
  let first = Infinity;
  for (let s = 0; s < t.bids; s++) if (t.ts[s] < first) first = t.ts[s];
  for (let i = 0; i < t.imps.length; i++) if (t.imps.ts[i] < first) first = t.imps.ts[i];
  return first;
}

/** The report of records already read (a test's, a few): tallied as `bidder report` streams them. */
export function buildReport(all: Iterable<EventRecord>, campaigns: readonly Campaign[], badLines = 0, filesGone = 0, days?: Days): Report {
  return reportOf(tallyOf(all), campaigns, badLines, filesGone, days);
}

