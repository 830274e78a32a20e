/**
 * Training rows from the bidder's NDJSON event logs, joined by bid id as `bidder report` joins
 * them (src/report/report.ts): a row is a `bid` whose impression was bought (a `win`, `billing`
 * or `impression` record), labelled 1 when a `click` on that bid is in the logs. A click on a bid
 * never bought (lost, or its win not in the logs) is not a row: the ad it clicked did not run
 * here. Loss records change nothing: the bidder logs one only for a bid it held, and a later win
 * is the exchange billing it, which the report counts as bought too.
 *
 * The join does not depend on read order: the logs of a fleet (`--workers`, or several bidders)
 * are read one file after the other, and a notice may sit in another file than its bid, or before
 * it. The files are read twice: first every record, for which bids were bought and clicked (a few
 * numbers per bid id), then the bids again, to build the rows of those alone, most bids being
 * lost. A file rotated away between the two (a running bidder's log) counts in `filesGone`, its
 * bought bids in `impressionsWithoutBid`. Rows come out in bid-time order (then read order), so
 * the validation split's latest rows are the latest of the whole fleet rather than of its last file.
 *
 * Features are rebuilt through the builder the bid path used: the imp's and the user's half from the
 * record's ctx and profile (as the features read them; none of the user's where the record says its
 * user data is withheld from training, `ctx.userDataWithheld`), the creative's half from the catalog given,
 * as it is now. So that a row is what the model saw, a bid whose creative's fingerprint (logged with
 * it) differs from the catalog's is left out, counted, as is a bid whose creative is gone: a retitled
 * creative rebuilt from today's catalog changed 4,303 of 29,844 rows of an audit's log. A bid logged
 * without a fingerprint (a log older than it) is used unchecked, and counted.
 *
 * A row's label is final only once no click on it can still be counted: the bidder counts a click
 * on a bid it settled up to the expiry signed into the bid's URLs, `noticeTtlMs` after the bid,
 * plus the ledger's retention past that expiry (src/notices/notices.ts `clickUntil`): a page left
 * open, then clicked. That is `CLICK_WINDOW_TTLS` × `noticeTtlMs` after the bid, and the bid record
 * carries the bid's time only. So an impression bought on a bid less than that before `untilMs` (by
 * default the newest record read: a live or just-closed log) is left out and counted, clicked or
 * not: its 0 could still turn 1, and keeping only those already clicked would teach the latest rows
 * a CTR of their clicks alone. These are the latest rows, the very ones `train` holds out to stop
 * and calibrate on.
 */
import { DEFAULT_SETTINGS } from '../config/settings.js';
import { readEvents } from '../eventlog/read.js';
import { prepareCreatives } from '../features/rows.js';
import { ShardedMap } from '../util/sharded-map.js';
import type { FeatureBuilder } from '../features/features.js';
import type { Dataset } from './dataset.js';
import type { BidRecord } from '../eventlog/records.js';
import type { Campaign, ImpContext } from '../types.js';

export interface EventLogReadStats {
  lines: number;
  bids: number;
  /** Impressions bought on bids with a row: the rows. */
  wins: number;
  /** Clicks on those impressions: the positive rows. */
  clicks: number;
  /** Lines that are no record, and bid records without the fields the features read, of their types. */
  badLines: number;
  /** Bids on a creative the catalog no longer has: no row. */
  unknownCreatives: number;
  /** Bids whose creative the catalog has changed since (its fingerprint differs): no row. */
  changedCreatives: number;
  /** Impressions bought on bids of unknownCreatives or changedCreatives: the rows left out. */
  impressionsOfSkippedBids: number;
  /** Of `bids`, those logged without a creative fingerprint (older logs): rebuilt from the catalog as it is now, unchecked. */
  unverifiedBids: number;
  /** Impressions whose bid is in none of the files read (another bidder's log not given, or rotated away). */
  impressionsWithoutBid: number;
  /** Impressions whose bid record is in the files but malformed (counted in `badLines`), no well-formed record of it there: no row. */
  impressionsOfMalformedBids: number;
  /** Clicks on bids with no impression bought in the logs (lost bids, or impressions of logs not given): no row. */
  clicksWithoutImpression: number;
  /** Files listed and removed before they were read (rotated away by a running bidder): their records are in no row. */
  filesGone: number;
  /** Impressions bought on bids whose click window was still open at `untilMs` (made less than `clickWindowMs` before it): no row yet. */
  clickWindowOpen: number;
  /** How long after its bid a click on a bought impression still counts: `CLICK_WINDOW_TTLS` × `noticeTtlMs`. */
  clickWindowMs: number;
  /** The time the labels are final at: the `untilMs` given, else the newest record read (null: none). */
  untilMs: number | null;
}

/**
 * A click counts until its bid's notice expiry (`noticeTtlMs`) plus the ledger's retention past
 * it, 2 × `noticeTtlMs` (BudgetLedger.retentionMs): the bidder opens its ledger with that default
 * (src/ledger/open.ts) and neither its settings nor the event log carry another.
 */
export const CLICK_WINDOW_TTLS = 3;

/**
 * When a click can still come: `noticeTtlMs`, that of the bidder the bids were made by; `untilMs`,
 * the time the log stands at (default: its newest record).
 */
export interface ClickWindow {
  noticeTtlMs: number;
  untilMs?: number;
}

const NO_BID = -1;
const SKIPPED = -2;
// Only malformed records of the bid so far: a well-formed one later is still taken, as the second pass takes it.
const MALFORMED = -3;
const BOUGHT = 1;
const CLICKED = 2;

/** `files` as `eventFiles()` lists them: each once, so no row is read twice. */
export async function datasetFromEventLog(
  files: readonly string[],
  campaigns: readonly Campaign[],
  builder: FeatureBuilder,
  clickWindow: ClickWindow = { noticeTtlMs: DEFAULT_SETTINGS.noticeTtlMs },
): Promise<{ data: Dataset; stats: EventLogReadStats }> {
  const F = builder.spec.sparseFields;
  const D = builder.spec.denseDim;
  const prepared = prepareCreatives(campaigns, builder);
  // Per bid with a creative as logged: its time, in read order (its number, `cand`).
  let ts = new Float64Array(1 << 16);
  let cands = 0;
  // Bid id (of a bid or a notice) → its slot: sharded, since a log can hold more ids than a Map.
  const slotOf = new ShardedMap<number>();
  let ids = 0;
  // Per slot: the bid's cand, or NO_BID, or SKIPPED (a creative this catalog no longer has, or has
  // changed), or MALFORMED.
  let candAt = new Int32Array(1 << 16);
  // Per slot: BOUGHT, CLICKED (exchanges repeat notices, which count once).
  let flags = new Uint8Array(1 << 16);
  const stats: EventLogReadStats = {
    lines: 0,
    bids: 0,
    wins: 0,
    clicks: 0,
    badLines: 0,
    unknownCreatives: 0,
    changedCreatives: 0,
    impressionsOfSkippedBids: 0,
    unverifiedBids: 0,
    impressionsWithoutBid: 0,
    impressionsOfMalformedBids: 0,
    clicksWithoutImpression: 0,
    filesGone: 0,
    clickWindowOpen: 0,
    clickWindowMs: CLICK_WINDOW_TTLS * clickWindow.noticeTtlMs,
    untilMs: null,
  };
  let newest = -Infinity;
  const gone = new Set<string>();

  function slot(id: string): number {
    let k = slotOf.get(id);
    if (k !== undefined) return k;
    if (ids === candAt.length) {
      candAt = grown(candAt, new Int32Array(ids * 2));
      flags = grown(flags, new Uint8Array(ids * 2));
    }
    k = ids++;
    slotOf.set(id, k);
    candAt[k] = NO_BID;
    return k;
  }

  // First pass: which bids make rows. A feature row is 232 bytes, and most bids are lost (a real
  // bidder's log: 2,901 bought of 15,166), so rows are written in a second pass, for those alone.
  // A line that is no record (a torn last write) is counted and skipped.
  for await (const rec of readEvents(files, () => (stats.lines++, stats.badLines++), (f) => gone.add(f))) {
    stats.lines++;
    if (typeof rec.ts === 'number' && rec.ts > newest) newest = rec.ts;
    if (rec.type === 'bid') {
      const k = slot(rec.bidId);
      if (!wellFormed(rec)) {
        stats.badLines++;
        if (candAt[k] === NO_BID) candAt[k] = MALFORMED;
        continue;
      }
      if (candAt[k] !== NO_BID && candAt[k] !== MALFORMED) continue;
      const pc = prepared.get(rec.creativeId);
      if (pc === undefined) {
        candAt[k] = SKIPPED;
        stats.unknownCreatives++;
        continue;
      }
      if (rec.creativeFingerprint === undefined) stats.unverifiedBids++;
      else if (rec.creativeFingerprint !== pc.fingerprint) {
        candAt[k] = SKIPPED;
        stats.changedCreatives++;
        continue;
      }
      if (cands === ts.length) ts = grown(ts, new Float64Array(cands * 2));
      ts[cands] = rec.ts;
      candAt[k] = cands++;
      stats.bids++;
    } else if (rec.type === 'win' || rec.type === 'billing' || rec.type === 'impression') flags[slot(rec.bidId)] |= BOUGHT;
    else if (rec.type === 'click') flags[slot(rec.bidId)] |= CLICKED;
  }

  const until = clickWindow.untilMs ?? newest;
  if (Number.isFinite(until)) stats.untilMs = until;
  // A click is counted until the bid's expiry plus the ledger's retention: clickWindowMs after it.
  const openFrom = until - stats.clickWindowMs;
  const keep = new Uint32Array(cands);
  const clickedCand = new Uint8Array(cands);
  let out = 0;
  for (let k = 0; k < ids; k++) {
    if (!(flags[k] & BOUGHT)) {
      if (flags[k] & CLICKED) stats.clicksWithoutImpression++;
      continue;
    }
    const c = candAt[k];
    if (c === NO_BID) stats.impressionsWithoutBid++;
    else if (c === MALFORMED) stats.impressionsOfMalformedBids++;
    else if (c === SKIPPED) stats.impressionsOfSkippedBids++;
    else if (ts[c] >= openFrom) stats.clickWindowOpen++;
    else {
      keep[out++] = c;
      if (flags[k] & CLICKED) clickedCand[c] = 1;
    }
  }
  // Rows in bid-time order, then read order.
  const order = keep.subarray(0, out).sort((a, b) => ts[a] - ts[b] || a - b);
  const rowOf = new Int32Array(cands).fill(-1);
  for (let r = 0; r < out; r++) rowOf[order[r]] = r;

  // Second pass: the rows, each written where its order puts it. The first well-formed record of
  // an id is the one the first pass took, as the files are read in the same order.
  const { sparse, dense } = builder.allocate(out);
  const written = new Uint8Array(out);
  for await (const rec of readEvents(files, () => {}, (f) => gone.add(f))) {
    if (rec.type !== 'bid' || !wellFormed(rec)) continue;
    const k = slotOf.get(rec.bidId);
    const c = k === undefined ? -1 : candAt[k];
    const r = c < 0 ? -1 : rowOf[c];
    const pc = prepared.get(rec.creativeId);
    if (r < 0 || written[r] || pc === undefined) continue;
    // User data withheld from training (docs/privacy.md): a contextual row, whatever a writer
    // other than the bidder's (one that does not strip it) left in the record.
    const withheld = rec.ctx.userDataWithheld === true;
    builder.writeRow(withheld ? { ...rec.ctx, userDataAllowed: false } : rec.ctx, pc, withheld ? undefined : rec.profile, sparse, dense, r);
    written[r] = 1;
  }
  stats.filesGone = gone.size;

  // A file rotated away between the passes took its bids' rows: those impressions now have no bid.
  const labels = new Float32Array(out);
  let rows = 0;
  for (let r = 0; r < out; r++) {
    if (!written[r]) {
      stats.impressionsWithoutBid++;
      continue;
    }
    if (rows < r) {
      sparse.copyWithin(rows * F, r * F, r * F + F);
      dense.copyWithin(rows * D, r * D, r * D + D);
    }
    labels[rows++] = clickedCand[order[r]];
  }
  for (let r = 0; r < rows; r++) stats.clicks += labels[r];
  stats.wins = rows;
  return {
    data: { rows, sparse: sparse.subarray(0, rows * F), dense: dense.subarray(0, rows * D), labels: labels.subarray(0, rows), truth: new Float32Array(rows).fill(NaN) },
    stats,
  };
}

/** `to` holding `from`'s values first. */
function grown<T extends Int32Array | Float64Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

const CTX_STRINGS = ['exchange', 'siteOrAppId', 'publisherId', 'domain', 'os', 'country', 'region', 'format', 'dealId'] as const satisfies readonly (keyof ImpContext)[];
const CTX_NUMBERS = ['deviceType', 'hour', 'w', 'h'] as const satisfies readonly (keyof ImpContext)[];

const strings = (a: unknown) => Array.isArray(a) && a.every((x) => typeof x === 'string');

/**
 * Whether a bid record has every field the features read, of the type they read it as: the
 * builder trusts its input (it is the bid path's), and a record edited by hand or written by
 * something else would throw there or make a row of garbage.
 */
function wellFormed(rec: BidRecord): boolean {
  const { ctx, profile } = rec as { ctx: unknown; profile: unknown };
  if (typeof rec.ts !== 'number' || typeof rec.creativeId !== 'string' || !(rec.creativeFingerprint === undefined || typeof rec.creativeFingerprint === 'string')) return false;
  if (typeof ctx !== 'object' || ctx === null) return false;
  const c = ctx as Record<string, unknown>;
  for (const f of CTX_STRINGS) if (typeof c[f] !== 'string') return false;
  for (const f of CTX_NUMBERS) if (typeof c[f] !== 'number') return false;
  if (typeof c.isApp !== 'boolean' || typeof c.userDataAllowed !== 'boolean' || !strings(c.categories) || !strings(c.segments)) return false;
  // Absent in older logs and wherever user data may be kept.
  if (c.userDataWithheld !== undefined && c.userDataWithheld !== true) return false;
  if (profile === undefined) return true;
  if (typeof profile !== 'object' || profile === null) return false;
  const p = profile as Record<string, unknown>;
  const counts = p.campaignImpressions;
  return strings(p.seenCategories) && strings(p.clickedCategories) && typeof counts === 'object' && counts !== null && !Array.isArray(counts) && Object.values(counts).every((n) => typeof n === 'number');
}
