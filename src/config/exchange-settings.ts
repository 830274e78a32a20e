/**
 * What an exchange entry of exchanges.yaml becomes (`ExchangeSettings`), with the defaults the
 * policy schemas and `loadPolicies` share: the seat answered in when the exchange names none, and
 * every ad format the bidder answers. Apart from policies.ts so that the schemas (policy-schemas.ts)
 * read `ALL_FORMATS` without importing the loader that imports them; policies.ts re-exports all
 * three.
 */
import type { MediaType } from '../types.js';

/** The seat the bidder answers in when the exchange names none (`seat` in exchanges.yaml). */
export const DEFAULT_SEAT = 'rtb-bidder';

/** Every ad format the bidder answers: an exchange's `formats` unless it names fewer. */
export const ALL_FORMATS: readonly MediaType[] = Object.freeze(['banner', 'video', 'native', 'audio']);

/** Per-exchange behaviour (policies/exchanges.yaml). */
export interface ExchangeSettings {
  name: string;
  /** Currency the bidder answers in for this exchange. */
  currency: string;
  /** Accept gzip-compressed request bodies. */
  gzip: boolean;
  /** 'empty' = HTTP 204; 'nbr' = 200 with `{"id":..,"nbr":N}` (OpenRTB 2.6 §4.2.2). */
  noBid: 'empty' | 'nbr';
  /** Time the exchange's network eats from tmax; the bidder's own deadline is tmax minus this. */
  networkAllowanceMs: number;
  /** Decimal places of prices answered in `currency`; an answer in another currency: `answerDecimals` (src/price/price.ts). */
  priceDecimals: number;
  /**
   * The auction a request without `at` is priced for: 2 (second price, OpenRTB's default) or 1
   * (first price). Prebid.js never sends `at`, and its auction is first price: priced as second
   * price, a bid there was paid at the paced value, unshaded (10x in the audit).
   */
  auctionType: 1 | 2;
  /** Optional access control: allowed client addresses (IP literals or CIDR ranges) and/or a shared secret header value. */
  allowIps: string[];
  sharedSecret: string;
  /**
   * An exchange with neither `sharedSecret` nor `allowIps` answers only loopback clients (a bid
   * request reserves budget, so an open port lets anyone tie it up); `openToAll` lifts that.
   */
  openToAll: boolean;
  /**
   * How long a bid's reservation holds budget when the exchange sends no notice; 0 = the notice
   * TTL. Shorter frees the budget of an exchange that never answers sooner; a win arriving after it
   * is still recorded (as spend while the budget has room, else as overspend).
   */
  reservationHoldMs: number;
  /** The seat the bidder answers in (`seatbid.seat`), checked against `bseat`, `wseat` and deals' `wseat`. */
  seat: string;
  /**
   * Browser origins allowed to call the bid route (CORS with credentials, on every answer): for
   * pages running Prebid.js client adapters. `*` allows any origin. Empty: no CORS headers.
   */
  corsOrigins: string[];
  /**
   * Write the bid's own price into nurl/burl instead of `${AUCTION_PRICE}`, for clients that never
   * expand the macro (Prebid.js fires burl and eventtrackers as they are): the price settled is
   * then the bid price, which a first-price client is billed.
   */
  expandPrice: boolean;
  /**
   * Which notice is the billable event: `win` (default) settles spend on the win notice, for
   * exchanges that bill what they report won; `billing` settles only on the billing notice (`burl`,
   * OpenRTB 2.5/2.6: the win notice is "not necessarily indicative of a delivered or billable ad"),
   * so a win never rendered costs nothing and its reservation is released at expiry. Only for
   * exchanges that send `burl` (or whose bids' markup carries the impression tracker): on one that
   * never does, nothing would be recorded.
   */
  billsOn: 'win' | 'billing';
  /**
   * Give video and audio bids a `nurl` (default false). Prebid.js reads a video bid's nurl as the
   * URL of its VAST, so it gets none there; an exchange that reports wins only by nurl and sends no
   * `burl` needs one, or the VAST impression settles the bid at its price, above a second-price
   * clearing price.
   */
  vastNurl: boolean;
  /**
   * Put the impression tracker (`/notice/impression`, a 1×1 image) in banner markup too (default
   * false; native and VAST markup always carry theirs): for clients that render a banner without
   * firing `nurl` or `burl`, such as Prebid Mobile's own rendering behind Prebid Server. Without it
   * such an impression is billed and never recorded. It costs a banner bid one more MAC and its
   * impression one more request to the bidder, which clients that fire their notices do not need.
   */
  bannerImpressionTracker: boolean;
  /**
   * Whether the exchange sends loss notices (`lurl`). true: a bid that hears nothing teaches
   * nothing. false: a bid of this process whose notices have all stayed silent when its notice TTL
   * passes is taken as lost at its bid, by the shader and the pacer (src/notices/loss-inference.ts).
   * 'auto' (default): as true until the exchange has shown it sends none (1,000 first-price bids
   * expired unheard, no loss notice from it), then as false until a loss notice comes. Without
   * losses the first-price shader learns from wins alone, each saying the competition was at most
   * the bid, and shades bids down until they stop winning. Inferring holds only where each bid's
   * notices come back to the process that made it (docs/configuration.md): one heard by another
   * counts here as a loss.
   */
  lossNotices: boolean | 'auto';
  /**
   * The ad formats the exchange's clients can render (default: all four). An imp's media objects
   * of other formats are not offered to campaigns: Prebid.js reads a bid's `mtype` 1, 2 and 4 only
   * and takes any other for a banner, so an audio bid (mtype 3) on a banner+audio unit was written
   * into the page as a banner, its VAST as markup, and billed for an ad that never played.
   */
  formats: readonly MediaType[];
}
