/**
 * Drives a running bidder over HTTP with a simulated day: POSTs each request to the bid endpoint,
 * runs the auction against the market's competing bid, fires the win (nurl, burl) or loss (lurl)
 * notice with the OpenRTB macros expanded, and, where the hidden true CTR says the user clicks,
 * the click URL found in the ad markup. The market's draws for a request (competing bid, click
 * chance) are taken when the request is generated, so the outcome does not depend on the order in
 * which concurrent responses come back: a seed reproduces the run against the same bidder.
 */
import { createProfileStore } from '../features/profiles.js';
import type { Campaign, Creative } from '../types.js';
import type { Market, SimRequest } from '../sim/market.js';
import { clickUrlFrom, expand } from './exchange.js';

export interface DriveOptions {
  market: Market;
  campaigns: readonly Campaign[];
  /** Base URL of the bidder, e.g. http://127.0.0.1:8080 */
  target: string;
  /** Path of the bid endpoint. */
  bidPath?: string;
  concurrency?: number;
  maxRequests?: number;
  fetchImpl?: typeof fetch;
  /** Called for each notice that failed (network error or HTTP >= 400). */
  onNoticeError?: (url: string, reason: string) => void;
  /** Called after each request's auction and notices settle. */
  onOutcome?: (o: DriveOutcome) => void;
}

export interface DriveOutcome {
  sr: SimRequest;
  status: number;
  bidCpm: number;
  competingCpm: number;
  won: boolean;
  clearingCpm: number;
  clicked: boolean;
  creativeId: string;
}

export interface DriveReport {
  requests: number;
  bids: number;
  noBids: number;
  errors: number;
  statuses: Record<string, number>;
  wins: number;
  losses: number;
  clicks: number;
  noticeErrors: number;
  spendUsd: number;
  latencyMsP50: number;
  latencyMsP99: number;
  seconds: number;
}

/** The parts of an OpenRTB bid the simulator's exchange reads. */
export interface Bid {
  id: string;
  impid: string;
  price: number;
  adid?: string;
  crid?: string;
  cid?: string;
  nurl?: string;
  burl?: string;
  lurl?: string;
  adm?: string;
}

/**
 * The simulated exchange's auction for one bid: it wins above the floor and the competing bid,
 * clears at the bid (first price) or at the larger of floor and competing bid (second price), and
 * the notice macros are filled as an exchange would.
 */
export function resolveAuction(
  sr: SimRequest,
  bid: { id: string; impid: string; price: number; adid?: string },
  body: { cur?: string; seatbid?: Array<{ seat?: string }> } | undefined,
  competingCpm: number,
): { won: boolean; clearing: number; macros: Record<string, string> } {
  const floor = (sr.request.imp[0] as { bidfloor?: number } | undefined)?.bidfloor ?? 0;
  const won = bid.price >= floor && bid.price > competingCpm;
  const clearing = !won ? 0 : sr.request.at === 2 ? Math.max(competingCpm, floor) : bid.price;
  const macros: Record<string, string> = {
    AUCTION_ID: sr.request.id,
    AUCTION_BID_ID: bid.id,
    AUCTION_IMP_ID: bid.impid,
    AUCTION_SEAT_ID: body?.seatbid?.[0]?.seat ?? '',
    AUCTION_AD_ID: bid.adid ?? '',
    AUCTION_CURRENCY: body?.cur ?? 'USD',
    AUCTION_PRICE: clearing.toFixed(4),
    AUCTION_MIN_TO_WIN: competingCpm.toFixed(4),
    // List 5.25: 102 = lost to a higher bid, 100 = below floor.
    AUCTION_LOSS: bid.price < floor ? '100' : '102',
  };
  return { won, clearing, macros };
}

/**
 * Page categories as the bid path records them in profiles (lower-cased, each followed by its tier-1
 * parent), so the user's true history here matches the one the training rows were simulated with.
 */
function expandCategories(cats: readonly string[]): string[] {
  const out: string[] = [];
  for (const c of cats) {
    const l = c.toLowerCase();
    out.push(l);
    const dash = l.indexOf('-');
    if (dash > 0) out.push(l.slice(0, dash));
  }
  return out;
}

export async function driveBidder(o: DriveOptions): Promise<DriveReport> {
  const { market } = o;
  const doFetch = o.fetchImpl ?? fetch;
  const url = `${o.target.replace(/\/$/, '')}${o.bidPath ?? '/openrtb2/bid'}`;
  const creatives = new Map<string, { creative: Creative; campaign: Campaign }>();
  for (const c of o.campaigns) for (const cr of c.creatives) creatives.set(cr.id, { creative: cr, campaign: c });
  let now = market.startMs;
  const truthProfiles = createProfileStore({ clock: () => now, maxUsers: 100_000 });
  const report: DriveReport = { requests: 0, bids: 0, noBids: 0, errors: 0, statuses: {}, wins: 0, losses: 0, clicks: 0, noticeErrors: 0, spendUsd: 0, latencyMsP50: 0, latencyMsP99: 0, seconds: 0 };
  const latencies: number[] = [];
  const it = market.requests();
  const max = o.maxRequests ?? Infinity;
  const t0 = performance.now();

  async function notice(u: string | undefined) {
    if (!u) return;
    try {
      // A click answers with a redirect to the advertiser's landing page, which is not ours to load.
      const r = await doFetch(u, { redirect: 'manual' });
      await r.arrayBuffer();
      if (r.status >= 400) {
        report.noticeErrors++;
        o.onNoticeError?.(u, `HTTP ${r.status}`);
      }
    } catch (err) {
      report.noticeErrors++;
      o.onNoticeError?.(u, (err as Error).message);
    }
  }

  function next(): { sr: SimRequest; competingCpm: number; clickDraw: number } | undefined {
    if (report.requests >= max) return undefined;
    const n = it.next();
    if (n.done) return undefined;
    report.requests++;
    now = n.value.tsMs;
    return { sr: n.value, competingCpm: market.competingBidCpm(n.value), clickDraw: market.rng.next() };
  }

  async function worker() {
    for (let job = next(); job !== undefined; job = next()) {
      const { sr, competingCpm, clickDraw } = job;
      const started = performance.now();
      let status = 0;
      let body: { id?: string; cur?: string; seatbid?: { seat?: string; bid: Bid[] }[] } | undefined;
      // An answer that could not be read (the connection failed, or a 200 whose body is not
      // JSON) is an error, not also a no-bid.
      let failed = false;
      try {
        const res = await doFetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-openrtb-version': '2.6' }, body: JSON.stringify(sr.request) });
        status = res.status;
        body = status === 200 ? ((await res.json()) as typeof body) : (await res.arrayBuffer(), undefined);
      } catch {
        failed = true;
        report.errors++;
      }
      latencies.push(performance.now() - started);
      report.statuses[status] = (report.statuses[status] ?? 0) + 1;
      const bid = body?.seatbid?.[0]?.bid?.[0];
      const outcome: DriveOutcome = { sr, status, bidCpm: 0, competingCpm, won: false, clearingCpm: 0, clicked: false, creativeId: '' };
      if (!bid) {
        if (!failed && (status === 204 || status === 200)) report.noBids++;
        o.onOutcome?.(outcome);
        continue;
      }
      report.bids++;
      const { won, clearing, macros } = resolveAuction(sr, bid, body, competingCpm);
      outcome.bidCpm = bid.price;
      outcome.won = won;
      outcome.clearingCpm = clearing;
      outcome.creativeId = bid.crid ?? '';
      if (!won) {
        report.losses++;
        await notice(bid.lurl && expand(bid.lurl, macros));
        o.onOutcome?.(outcome);
        continue;
      }
      report.wins++;
      report.spendUsd += clearing / 1000;
      await notice(bid.nurl && expand(bid.nurl, macros));
      await notice(bid.burl && expand(bid.burl, macros));
      const known = creatives.get(bid.crid ?? '');
      if (known) {
        const profile = sr.userKnown ? truthProfiles.get(sr.user.id) : undefined;
        const p = market.trueCtr(sr, known.creative, known.campaign, profile);
        if (sr.userKnown) truthProfiles.recordImpression(sr.user.id, known.campaign.id, expandCategories(sr.inventory.cat));
        if (clickDraw < p) {
          outcome.clicked = true;
          report.clicks++;
          if (sr.userKnown) truthProfiles.recordClick(sr.user.id, known.campaign.cat);
          await notice(clickUrlFrom(bid.adm));
        }
      }
      o.onOutcome?.(outcome);
    }
  }

  await Promise.all(Array.from({ length: o.concurrency ?? 8 }, worker));
  latencies.sort((a, b) => a - b);
  report.latencyMsP50 = latencies[Math.floor(latencies.length * 0.5)] ?? 0;
  report.latencyMsP99 = latencies[Math.floor(latencies.length * 0.99)] ?? 0;
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}
