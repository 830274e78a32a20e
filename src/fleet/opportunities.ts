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
 * The minutes are Redis's, named in the script (minuteWritten): by each bidder's own clock, one 90 s behind wrote
 * its counts a minute off the others' and paired them with the wrong minute of the fleet's, and the
 * fleet paced 1.52 times a campaign's budget (shares 1.000 and 0.523 where 0.5 and 0.5 are right;
 * 2 h behind, 2.00 times).
 */
export const BUCKET_TTL_MS = 10 * 60_000;

/**
 * The minute a write at Redis's `nowMs` counts for: the bidder's reckoning of the minute just
 * ended (its clock plus the difference to Redis's its last call measured, `reckoned`) where that is
 * within a minute of the one whose end is nearest `nowMs`; else that one. Named by the nearest end
 * alone, a write landing over 30 s after its minute (a fleet sync of 30 s or more, and a bidder
 * syncing late in the minute) went under the minute in progress: two bidders given half of a
 * campaign's auctions paced 0.500 + 1.000 of its budget at a 45 s sync, and NaN at 60 s. The
 * reckoning is off by a round trip and what the bidder's clock moved since its last call, so one
 * stepped since is refused beyond a minute. LUA_OPPORTUNITIES runs the same rule.
 */
export function minuteWritten(nowMs: number, reckoned?: number): number {
  const nearest = Math.floor((nowMs + 30_000) / 60_000) - 1;
  return reckoned !== undefined && reckoned >= nearest - 1 && reckoned <= nearest + 1 ? reckoned : nearest;
}

// ARGV: prefix, the bidder's reckoned minute ('' for none), then campaign id, count, … (none:
// nothing written). Answers Redis's now, the minute written (or that would have been), and the
// hash of the minute before it, as a flat list. The minute as minuteWritten names it.
const LUA_OPPORTUNITIES = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local w = math.floor((now + 30000) / 60000) - 1
local m = tonumber(ARGV[2])
if m and m >= w - 1 and m <= w + 1 then w = m end
if #ARGV > 2 then
  local k = ARGV[1] .. 'o:' .. string.format('%d', w)
  for i = 3, #ARGV, 2 do redis.call('HINCRBY', k, ARGV[i], ARGV[i + 1]) end
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
 * answers the fleet's counts of the minute before, the minutes by Redis's clock; `reckoned`: the
 * minute just ended by the bidder's reckoning of Redis's clock (minuteWritten).
 */
export type FleetOpportunities = (write: ReadonlyMap<string, number> | null, reckoned?: number) => Promise<FleetMinute>;

export function createFleetOpportunities(o: { client: Redis; keyPrefix: string }): FleetOpportunities {
  return async (write, reckoned) => {
    const args: string[] = [reckoned === undefined || !Number.isSafeInteger(reckoned) ? '' : String(reckoned)];
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
