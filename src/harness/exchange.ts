/**
 * The exchange's side of the notice contract, shared by the simulator's driver, the load test and
 * the tests: macro expansion, the click URL read out of the markup, and a notice firer.
 */
import type { Rng } from '../random/random.js';

/** OpenRTB 2.6 §4.4 substitution macros. */
export function expand(url: string, m: Record<string, string>): string {
  return url.replace(/\$\{(AUCTION_[A-Z_]+)\}/g, (all, name: string) => m[name] ?? all);
}

/** The bidder's click URL inside the markup (banner href, VAST ClickThrough, native link). */
export function clickUrlFrom(adm: string | undefined): string | undefined {
  if (!adm) return undefined;
  const m = /https?:\/\/[^"'<>\s\]]*\/notice\/click\?[^"'<>\s\]]*/.exec(adm);
  return m?.[0].replace(/&(?:amp|#38|#x26);/gi, '&');
}


export interface NoticePlan {
  /** Share of bids the load test "wins": it fires the win notice (nurl). */
  winShare: number;
  /** Share of wins that also get a billing notice (burl), as exchanges send both. */
  billingShare: number;
  /** Share of wins that get a click. Far above a real CTR, so clicks show in a short run. */
  clickShare: number;
  /** Share of lost bids whose loss notice (lurl) is sent. */
  lossShare: number;
  /**
   * Send each notice, query and all, to `/notice/unrouted`, which the bidder answers 404 before
   * any notice work: what the notice requests cost a server by themselves (the load test's
   * `--notice-cost` floor). Nothing settles, so budgets are not spent.
   */
  unrouted?: boolean;
}

export const DEFAULT_NOTICES: NoticePlan = { winShare: 0.3, billingShare: 0.9, clickShare: 0.05, lossShare: 0.5 };

export type NoticeKindSent = 'win' | 'billing' | 'click' | 'loss';

export interface NoticeCounts {
  sent: Record<NoticeKindSent, number>;
  ok: number;
  refused: number;
  failed: number;
  /** Not sent because too many notices were in flight: the bidder was not keeping up. */
  dropped: number;
}

/**
 * Fires win, billing, click and loss notices for the bids in responses, as an exchange and a
 * browser would: the clearing price under the bid for `${AUCTION_PRICE}`, a loss code and a
 * minimum-to-win for the loss macros. URLs are sent to `origin` whatever host the bidder signed
 * them for, so a bidder with the default publicUrl can be driven on any port.
 */
export function createNoticeFirer(opts: { origin: string; rng: Rng; plan: NoticePlan; maxInFlight: number }) {
  const { rng, plan } = opts;
  let inFlight = 0;
  const counts: NoticeCounts = { sent: { win: 0, billing: 0, click: 0, loss: 0 }, ok: 0, refused: 0, failed: 0, dropped: 0 };
  const idleWaiters: Array<() => void> = [];

  function local(url: string): string {
    const u = new URL(url);
    return opts.origin + (plan.unrouted ? '/notice/unrouted' : u.pathname) + u.search;
  }

  function fire(kind: NoticeKindSent, url: string): void {
    if (inFlight >= opts.maxInFlight) {
      counts.dropped++;
      return;
    }
    inFlight++;
    counts.sent[kind]++;
    // Click notices answer with a redirect to the landing page, which is not ours to load.
    fetch(local(url), { redirect: 'manual' }).then(
      async (r) => {
        await r.arrayBuffer();
        if (r.status < 400) counts.ok++;
        else counts.refused++;
      },
      () => counts.failed++,
    ).finally(() => {
      if (--inFlight === 0) for (const w of idleWaiters.splice(0)) w();
    });
  }

  return {
    counts,
    /** Reads a 200 bid response and fires the notices the plan draws for each of its bids. */
    onBidResponse(body: string): void {
      let res: { seatbid?: Array<{ bid?: Array<{ price: number; nurl?: string; burl?: string; lurl?: string; adm?: string }> }> };
      try {
        res = JSON.parse(body);
      } catch {
        return;
      }
      for (const sb of res.seatbid ?? []) {
        for (const b of sb.bid ?? []) {
          const clearing = (b.price * (0.5 + 0.5 * rng.next())).toFixed(4);
          if (rng.next() < plan.winShare) {
            if (b.nurl) fire('win', expand(b.nurl, { AUCTION_PRICE: clearing }));
            if (b.burl && rng.next() < plan.billingShare) fire('billing', expand(b.burl, { AUCTION_PRICE: clearing }));
            // The markup escapes '&' as &#38; (banner HTML) or &amp;: the simulator's reader undoes every form.
            const click = clickUrlFrom(b.adm);
            if (click && rng.next() < plan.clickShare) fire('click', click);
          } else if (b.lurl && rng.next() < plan.lossShare) {
            fire('loss', expand(b.lurl, { AUCTION_LOSS: '102', AUCTION_MIN_TO_WIN: (b.price * 1.1).toFixed(4) }));
          }
        }
      }
    },
    /** Resolves when every notice sent so far has been answered. */
    idle(): Promise<void> {
      return inFlight === 0 ? Promise.resolve() : new Promise((r) => idleWaiters.push(r));
    },
  };
}
