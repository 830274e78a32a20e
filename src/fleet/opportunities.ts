import type { Redis } from 'ioredis';

/**
 * The fleet's opportunities per campaign and minute (docs/fleet.md, "A campaign's own share"): a
 * load balancer that routes by region or exchange sends one campaign's auctions to some processes
 * only, whatever their part of all requests. One hash per minute, `<keyPrefix>o:<minute>` (minute =
 * epoch ms / 60,000 by the bidder's clock), field = campaign id, value = the opportunities the
 * fleet's bidders (worker threads each) were asked to price for it in that minute. Each bidder adds
 * its own counts of a minute once it is over and reads a minute every bidder has written by then;
 * a bucket lapses after BUCKET_TTL_MS.
 */
export const BUCKET_TTL_MS = 10 * 60_000;

// KEYS: the minute written, the minute read. ARGV: campaign id, count, … Answers the read minute's hash.
const LUA_OPPORTUNITIES = `
if #ARGV > 0 then
  for i = 1, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
  redis.call('PEXPIRE', KEYS[1], ${BUCKET_TTL_MS})
end
return redis.call('HGETALL', KEYS[2])
`;

/**
 * Adds this bidder's counts of minute `write.minute` (none: nothing written) to the fleet's, and
 * answers the fleet's counts of minute `readMinute`.
 */
export type FleetOpportunities = (write: { minute: number; counts: ReadonlyMap<string, number> } | null, readMinute: number) => Promise<Map<string, number>>;

export function createFleetOpportunities(o: { client: Redis; keyPrefix: string }): FleetOpportunities {
  const key = (minute: number) => `${o.keyPrefix}o:${minute}`;
  return async (write, readMinute) => {
    const args: string[] = [];
    if (write !== null) for (const [id, n] of write.counts) if (n > 0) args.push(id, String(Math.round(n)));
    const flat = (await o.client.eval(LUA_OPPORTUNITIES, 2, key(write?.minute ?? readMinute), key(readMinute), ...args)) as string[];
    const counts = new Map<string, number>();
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const n = Number(flat[i + 1]);
      if (Number.isFinite(n) && n > 0) counts.set(flat[i], n);
    }
    return counts;
  };
}
