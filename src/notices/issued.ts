import { randomBytes } from 'node:crypto';

const NO_CATEGORIES: readonly string[] = [];

/** What the bidder remembers about a bid it sent, for the feedback its notices carry. */
export interface IssuedBid {
  pctr: number;
  userKey: string;
  categories: readonly string[];
  segment: string;
  bidCpmUsd: number;
  /**
   * The version of the CTR model that scored `pctr`: its win and click are clicks that model
   * expected, whichever serves when they are heard (src/pace/calibration.ts, `onImpression`).
   * Absent: not known (the notice handler then takes the model serving when the bid was made,
   * NoticeDeps.modelOfBid, as for a bid the ring no longer remembers).
   */
  ctrModel?: string;
}

/** A remembered bid as `get` reads it back. */
export interface IssuedRecord extends IssuedBid {
  /** Bid in a first-price auction (`describe`); undefined for a bid not described. */
  firstPrice?: boolean;
}

/**
 * A described bid (`describe`) whose entry expired with no notice heard for it (`heard`): on an
 * exchange that sends no loss notices, a bid lost. Its strings are the ones it was described with.
 */
export type OnUnheard = (campaignId: string, creativeId: string, exchange: string, segment: string, bidCpmUsd: number, firstPrice: boolean) => void;

// A slot's flags.
const DESCRIBED = 1;
const HEARD = 2;
const FIRST_PRICE = 4;

/**
 * Bids issued by this process, kept until their notices expire (bounded: the oldest go first).
 * Only feedback reads this; money never depends on it — the ledger and the signed notice do —
 * so a notice that lands on another process of a fleet still settles correctly.
 *
 * A ring of slots in issue order, in columns: a remembered bid is its id (the key of the id → slot
 * map) and a slot whose numbers sit in typed arrays the GC never scans, and whose strings are the
 * request's own (segments and categories are interned upstream). As an lru-cache entry holding an
 * object with two boxed numbers it was about three heap objects and ~100 bytes more a bid, half a
 * million of them at the cap. Issue order is expiry order (one TTL for all), so the expired are
 * dropped from the oldest end as bids are added: the ring holds what the TTL keeps, up to `max`.
 *
 * `onUnheard` is called as the expired are dropped, for each described bid no notice was heard for
 * (src/notices/notices.ts decides what that silence means). A bid dropped at the cap before its
 * expiry is not: its notices could still have come.
 */
export function createIssuedBids(max: number, ttlMs: number, clock: () => number, onUnheard?: OnUnheard) {
  if (!(Number.isInteger(max) && max > 0)) throw new Error('max must be a positive integer');
  const slots = new Map<string, number>();
  let cap = Math.min(max, 1024);
  let ids: (string | undefined)[] = new Array<string | undefined>(cap);
  let users: string[] = new Array<string>(cap);
  let cats: (readonly string[])[] = new Array<readonly string[]>(cap);
  let segs: string[] = new Array<string>(cap);
  // One string per model loaded, shared by its bids.
  let models: (string | undefined)[] = new Array<string | undefined>(cap);
  let pctr = new Float64Array(cap);
  let bid = new Float64Array(cap);
  let expires = new Float64Array(cap);
  // What `describe` adds (the ids and exchange name are the policies' strings, shared).
  let camps: string[] = new Array<string>(cap);
  let creatives: string[] = new Array<string>(cap);
  let exchanges: string[] = new Array<string>(cap);
  let flags = new Uint8Array(cap);
  // The oldest slot and the number of slots in use, oldest to newest.
  let head = 0;
  let size = 0;

  /** The oldest bid is forgotten; `expired`: its TTL has passed, and its silence is told. */
  function dropOldest(expired: boolean): void {
    const id = ids[head]!;
    const f = flags[head];
    const unheard = expired && onUnheard !== undefined && (f & (DESCRIBED | HEARD)) === DESCRIBED;
    const campaignId = camps[head];
    const creativeId = creatives[head];
    const exchange = exchanges[head];
    const segment = segs[head];
    const bidCpmUsd = bid[head];
    // A re-issued id (never, with createBidIds) points at its newer slot: keep that.
    if (slots.get(id) === head) slots.delete(id);
    ids[head] = undefined;
    // Let go of the strings too: the ring outlives them.
    users[head] = '';
    cats[head] = NO_CATEGORIES;
    segs[head] = '';
    models[head] = undefined;
    camps[head] = '';
    creatives[head] = '';
    exchanges[head] = '';
    flags[head] = 0;
    head = (head + 1) % cap;
    size--;
    // Once the ring is whole again: the callback may read it.
    if (unheard) onUnheard(campaignId, creativeId, exchange, segment, bidCpmUsd, (f & FIRST_PRICE) !== 0);
  }

  /** Doubles the ring (up to `max`), unrolled so the oldest is slot 0 again. */
  function grow(): void {
    const next = Math.min(max, cap * 2);
    const order = (a: number) => (head + a) % cap;
    const move = <T>(from: ArrayLike<T>, to: { [i: number]: T }) => {
      for (let a = 0; a < size; a++) to[a] = from[order(a)];
    };
    const nIds = new Array<string | undefined>(next);
    const nUsers = new Array<string>(next);
    const nCats = new Array<readonly string[]>(next);
    const nSegs = new Array<string>(next);
    const nModels = new Array<string | undefined>(next);
    const nPctr = new Float64Array(next);
    const nBid = new Float64Array(next);
    const nExp = new Float64Array(next);
    const nCamps = new Array<string>(next);
    const nCreatives = new Array<string>(next);
    const nExchanges = new Array<string>(next);
    const nFlags = new Uint8Array(next);
    move(ids, nIds);
    move(users, nUsers);
    move(cats, nCats);
    move(segs, nSegs);
    move(models, nModels);
    move(pctr, nPctr);
    move(bid, nBid);
    move(expires, nExp);
    move(camps, nCamps);
    move(creatives, nCreatives);
    move(exchanges, nExchanges);
    move(flags, nFlags);
    for (let a = 0; a < size; a++) slots.set(nIds[a]!, a);
    [ids, users, cats, segs, models, pctr, bid, expires, camps, creatives, exchanges, flags] = [nIds, nUsers, nCats, nSegs, nModels, nPctr, nBid, nExp, nCamps, nCreatives, nExchanges, nFlags];
    cap = next;
    head = 0;
  }

  return {
    add(bidId: string, b: IssuedBid): void {
      const now = clock();
      while (size > 0 && expires[head] < now) dropOldest(true);
      if (size === cap) {
        if (cap < max) grow();
        else dropOldest(false);
      }
      const s = (head + size) % cap;
      size++;
      ids[s] = bidId;
      users[s] = b.userKey;
      cats[s] = b.categories;
      segs[s] = b.segment;
      models[s] = b.ctrModel;
      pctr[s] = b.pctr;
      bid[s] = b.bidCpmUsd;
      expires[s] = now + ttlMs;
      slots.set(bidId, s);
    },
    /**
     * Names a remembered bid's campaign, creative and exchange, and whether it was bid in a first-price
     * auction: a bid described is told to `onUnheard` if no notice is heard for it, and its win
     * tells the pacer by its auction whether the price was the market's or only a bound on it.
     */
    describe(bidId: string, campaignId: string, creativeId: string, exchange: string, firstPrice: boolean): void {
      const s = slots.get(bidId);
      if (s === undefined) return;
      camps[s] = campaignId;
      creatives[s] = creativeId;
      exchanges[s] = exchange;
      flags[s] |= DESCRIBED | (firstPrice ? FIRST_PRICE : 0);
    },
    /** A notice for the bid has come (any kind): its outcome is not unknown. False: a bid not remembered here. */
    heard(bidId: string): boolean {
      const s = slots.get(bidId);
      if (s === undefined) return false;
      flags[s] |= HEARD;
      return true;
    },
    get(bidId: string): IssuedRecord | undefined {
      const s = slots.get(bidId);
      // Stale past its TTL to the millisecond, as lru-cache counted it before.
      if (s === undefined || expires[s] < clock()) return undefined;
      const f = flags[s];
      return { pctr: pctr[s], userKey: users[s], categories: cats[s], segment: segs[s], bidCpmUsd: bid[s], ctrModel: models[s], firstPrice: f & DESCRIBED ? (f & FIRST_PRICE) !== 0 : undefined };
    },
    /** Bids remembered now (expired ones count until a later `add` drops them). */
    get size(): number {
      return size;
    },
  };
}

export type IssuedBids = ReturnType<typeof createIssuedBids>;

/**
 * Bid ids unique to this process and run: a random prefix, then a counter. Not from the seeded
 * random source on purpose: the ledger (a fleet's Redis too) keys money by bid id, so two bidders
 * or two runs started with the same seed must still never issue the same id.
 */
export function createBidIds(): () => string {
  const prefix = randomBytes(6).toString('base64url');
  let seq = 0;
  return () => `${prefix}-${(seq++).toString(36)}`;
}
