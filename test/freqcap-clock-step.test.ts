// A fleet bidder trusts its local copy of a user (caps and profile loaded from Redis) for
// userCacheTtlMs. That TTL ran on the wall clock: stepped back 10 min (NTP, a VM restored), a
// bidder kept its copy for 10 min and bid again and again for a user another bidder had capped.
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { DEFAULT_SETTINGS } from '../src/config/settings.js';
import { createPrivacy } from '../src/eligibility/privacy.js';
import { createMetrics } from '../src/metrics/metrics.js';
import type { Campaign } from '../src/types.js';
import { createUsers } from '../src/users/users.js';
import { connectRedis, dropKeysAndQuit, REDIS_URL } from './helpers/redis.js';

const client = await connectRedis();
if (!client && process.env.CI === 'true') throw new Error(`Redis unreachable at ${REDIS_URL}: the fleet suites need it in CI`);

describe.skipIf(!client)('a fleet bidder whose wall clock steps back', () => {
  const prefix = `test:fcstep:${process.pid}:${Date.now().toString(36)}:`;
  const opened: Redis[] = [];
  afterAll(async () => {
    for (const c of opened) c.disconnect();
    await dropKeysAndQuit(client!, prefix);
  });
  const campaigns = [{ id: 'capped', cat: ['IAB12'], frequencyCap: { count: 1, windowSec: 3600 } }] as unknown as Campaign[];
  /** One bidder's users, on its own connection, with its own wall clock and monotonic clock. */
  function bidder(clock: () => number, now: () => number) {
    const redis = new Redis(REDIS_URL, { enableAutoPipelining: true, maxRetriesPerRequest: 0 });
    opened.push(redis);
    const users = createUsers({
      settings: { ...DEFAULT_SETTINGS, userCacheTtlMs: 1000, ledger: { ...DEFAULT_SETTINGS.ledger, keyPrefix: prefix } },
      campaigns,
      redis,
      secret: 's'.repeat(24),
      privacy: createPrivacy(),
      metrics: createMetrics({ exchanges: [], campaigns: [], defaults: false }),
      clock,
      now,
    });
    users.setCampaigns(campaigns);
    return users;
  }

  it('loads a user again once userCacheTtlMs has passed on the monotonic clock, whatever the wall clock did', async () => {
    const T0 = Date.parse('2026-06-01T12:00:00Z');
    let wallA = T0;
    let wallB = T0;
    let mono = 5_000;
    const a = bidder(() => wallA, () => mono);
    const b = bidder(() => wallB, () => mono);
    const req = { id: 'r', imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's1' }, user: { id: 'stepped-user' } } as never;
    const key = b.key(req, 'default');
    expect(key).not.toBe('');
    // B loads the user: no impressions, no profile.
    await b.warm!(req, 'default');
    expect(b.count(key, 'capped', 3600)).toBe(0);
    // B's wall clock steps back 10 min; 2 s pass. A wins the user's impression meanwhile.
    wallB -= 600_000;
    mono += 2_000;
    wallA += 2_000;
    a.profiles.recordImpression(key, 'capped', ['IAB12']);
    await a.frequency.record(key, 'capped');
    // B's copy is 2 s old, past the 1 s TTL: loaded again, the user is capped and the profile has the impression.
    await b.warm!(req, 'default');
    expect(b.count(key, 'capped', 3600)).toBe(1);
    expect(b.profiles.get(key)?.campaignImpressions).toEqual({ capped: 1 });
    await a.close();
    await b.close();
  });
});
