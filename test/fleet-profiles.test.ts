import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { connectRedis, dropKeysAndQuit, REDIS_URL } from './helpers/redis.js';

/**
 * User profiles hold across a fleet: a win settled through bidder A changes the profile, and so
 * the model's input and its pCTR, that bidder B uses for the same user.
 */
const client = await connectRedis();
if (!client && process.env.CI === 'true') throw new Error(`Redis unreachable at ${REDIS_URL}: the fleet suites need it in CI`);

interface BidRecord {
  type: string;
  bidId: string;
  campaignId: string;
  pctr: number;
  profile?: { seenCategories: string[]; clickedCategories: string[]; campaignImpressions: Record<string, number> };
}

describe.skipIf(!client)('user profiles across bidders sharing Redis', () => {
  const prefix = `test:fleetprofiles:${process.pid}:${Date.now().toString(36)}:`;
  let dir: string;
  let a: TestBidder;
  let b: TestBidder;
  let bClosed = false;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-profiles-'));
    cpSync('policies', dir, { recursive: true });
    // A command timeout a loaded CI machine does not run past (the default 100 ms is for serving).
    const ledger = { journalPath: join(dir, 'ledger'), redisUrl: REDIS_URL, keyPrefix: prefix, commandTimeoutMs: 2000 };
    a = await startBidder({ ledger, userCacheTtlMs: 50 }, dir);
    b = await startBidder({ ledger, userCacheTtlMs: 50 }, dir);
  });
  afterAll(async () => {
    await a?.close();
    if (b && !bClosed) await b.close();
    rmSync(b?.dir ?? '', { recursive: true, force: true });
    await dropKeysAndQuit(client!, prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  const req = (id: string, user: string) => ({ id, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's1', cat: ['IAB12'] }, user: { id: user } });

  it("a win on bidder A reaches bidder B's features for that user", async () => {
    const before = await b.bid(req('p1', 'profiled-user'));
    expect(before.status).toBe(200);
    const beforeId = (await before.json()).seatbid[0].bid[0].id as string;

    const won = await a.bid(req('p2', 'profiled-user'));
    expect(won.status).toBe(200);
    const bid = (await won.json()).seatbid[0].bid[0];
    expect((await fetch(a.url + bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(bid.price)))).status).toBe(200);

    await new Promise((r) => setTimeout(r, 75)); // past B's userCacheTtlMs, on the monotonic clock
    const after = await b.bid(req('p3', 'profiled-user'));
    expect(after.status).toBe(200);
    const afterId = (await after.json()).seatbid[0].bid[0].id as string;
    expect(await b.metric('bidder_ledger_errors_total', { op: 'frequency' })).toBe(0);

    // Closing flushes B's event log, where each bid records the profile its features used.
    await b.bidder.close();
    bClosed = true;
    const events = join(b.dir, 'events');
    const records = readdirSync(events)
      .map((f) => readFileSync(join(events, f), 'utf8'))
      .join('')
      .split('\n')
      // An empty line is the log's own (a notice written while a bid write is in flight starts a line of its own); readers skip it.
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as BidRecord)
      .filter((r) => r.type === 'bid');
    const first = records.find((r) => r.bidId === beforeId)!;
    const second = records.find((r) => r.bidId === afterId)!;
    expect(first.profile).toBeUndefined();
    expect(second.profile).toEqual({ seenCategories: ['iab12'], clickedCategories: [], campaignImpressions: { [bid.cid]: 1 } });
    // Same request, same bidder: only the profile differs, and the model sees it.
    expect(second.campaignId).toBe(first.campaignId);
    expect(second.pctr).not.toBe(first.pctr);
  });
});
