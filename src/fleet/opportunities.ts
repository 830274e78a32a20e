import type { Redis } from 'ioredis';

/**
 * The fleet's opportunities per campaign and minute (docs/fleet.md, "A campaign's own share"): a
 * load balancer that routes by region or exchange sends one campaign's auctions to some processes
 * only, whatever their part of all requests. One hash per minute, `<keyPrefix>o:<minute>` (minute =
 * epoch ms / 60,000 by Redis's clock), field = campaign id, value = the opportunities the fleet's
 * bidders (worker threads each) were asked to price for it in that minute. Each bidder adds its own
 * counts of a minute once it is over and reads a minute every bidder has written by then; a bucket
 * lapses after BUCKET_TTL_MS.
 *
 * The minutes are Redis's, named in the script: by each bidder's own clock, one 90 s behind wrote
 * its counts a minute off the others' and paired them with the wrong minute of the fleet's, and the
 * fleet paced 1.52 times a campaign's budget (shares 1.000 and 0.523 where 0.5 and 0.5 are right;
 * 2 h behind, 2.00 times).
 */
export const BUCKET_TTL_MS = 10 * 60_000;

/**
 * How far from a minute's end a write may come and still count for that minute: a bidder writes at
 * its first sync after a minute ends by its reckoning of Redis's clock (`nowMs` of its last call,
 * off by a round trip and what its own clock moved since), so a little before the end or up to a
 * sync period after it.
 */
const WRITE_SLACK_MS = 30_000;

// ARGV: prefix, then campaign id, count, … (none: nothing written). Answers Redis's now, the
// minute written (or that would have been), and the hash of the minute before it, as a flat list.
const LUA_OPPORTUNITIES = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local w = math.floor((now + ${WRITE_SLACK_MS}) / 60000) - 1
if #ARGV > 1 then
  local k = ARGV[1] .. 'o:' .. string.format('%d', w)
  for i = 2, #ARGV, 2 do redis.call('HINCRBY', k, ARGV[i], ARGV[i + 1]) end
  redis.call('PEXPIRE', k, ${BUCKET_TTL_MS})
end
local out = redis.call('HGETALL', ARGV[1] .. 'o:' .. string.format('%d', w - 1))
table.insert(out, 1, string.format('%d', w))
table.insert(out, 1, string.format('%d', now))
return out
`;

/** One call's answer: Redis's now, the minute written (or that a write would have gone to), the fleet's counts of the minute before it. */
export interface FleetMinute {
  nowMs: number;
  minute: number;
  counts: Map<string, number>;
}

/**
 * Adds this bidder's counts of the minute just ended (null: nothing written) to the fleet's, and
 * answers the fleet's counts of the minute before, the minutes by Redis's clock.
 */
export type FleetOpportunities = (write: ReadonlyMap<string, number> | null) => Promise<FleetMinute>;

export function createFleetOpportunities(o: { client: Redis; keyPrefix: string }): FleetOpportunities {
  return async (write) => {
    const args: string[] = [];
    if (write !== null) for (const [id, n] of write) if (n > 0) args.push(id, String(Math.round(n)));
    const flat = (await o.client.eval(LUA_OPPORTUNITIES, 0, o.keyPrefix, ...args)) as string[];
    const counts = new Map<string, number>();
    for (let i = 2; i + 1 < flat.length; i += 2) {
      const n = Number(flat[i + 1]);
      if (Number.isFinite(n) && n > 0) counts.set(flat[i], n);
    }
    return { nowMs: Number(flat[0]), minute: Number(flat[1]), counts };
  };
}
