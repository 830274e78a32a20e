import { hostname } from 'node:os';
import type { Redis } from 'ioredis';

/**
 * The fleet's traffic figures (docs/fleet.md, "Fleet size"): each process publishes the bid
 * requests a second it answers over a recent window, so that each paces the share of every budget
 * its traffic is of the fleet's rather than an even one (a load balancer may weigh processes
 * unevenly). One hash, `<keyPrefix>t`, one field per process (`host:pid`, as the notice keys'),
 * value `perSecond,leaseUntil`, the lease by Redis's clock. A worker thread of `--workers N` writes
 * its own rate × N there (the kernel spreads a port's connections evenly over them), so the hash
 * holds one field per process, not per thread: every bidder reads all of it at every sync, and
 * with a field per thread 1,600 threads (100 processes of 16) took 1.4 ms of Redis a read, 320
 * reads a second. Written beside the budget rules, not in their fields: a version before this one
 * parses those as exactly a rule and a lease.
 */

/** How long a figure counts unless written again: a stopped process's lapses with its rules' lease (60 s). */
export const TRAFFIC_LEASE_MS = 60_000;

// ARGV: prefix, field, figure ('' writes none), lease ms, then lapsed fields to drop. Answers Redis's
// now. The hash is read beside it by HGETALL, outside the script, in the same write (ioredis sends
// a tick's commands together, and Redis runs one connection's in order): parsed by the caller.
const LUA_TRAFFIC = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local k = ARGV[1] .. 't'
if ARGV[3] ~= '' then
  redis.call('HSET', k, ARGV[2], ARGV[3] .. ',' .. string.format('%.0f', now + tonumber(ARGV[4])))
  redis.call('PEXPIRE', k, tonumber(ARGV[4]) * 2)
end
-- A field found lapsed by the read before, unless written again since.
for i = 5, #ARGV do
  local u = tonumber(string.match(redis.call('HGET', k, ARGV[i]) or '', ',(%d+)$'))
  if u and u <= now then redis.call('HDEL', k, ARGV[i]) end
end
return tostring(now)
`;

/** Requests a second per process (`host:pid`) whose figure is live, this one's included once written. */
export type TrafficFigures = ReadonlyMap<string, number>;

/**
 * Publishes this process's figure (null: none yet, nothing written) and reads the fleet's. A
 * process still young writes nothing rather than withdrawing: a sibling worker thread may have
 * written the process's figure.
 */
export type FleetTraffic = (processPerSecond: number | null) => Promise<TrafficFigures>;

export function createFleetTraffic(o: { client: Redis; keyPrefix: string; leaseMs?: number; process?: string }): FleetTraffic {
  const mine = o.process ?? `${hostname()}:${process.pid}`;
  const leaseMs = o.leaseMs ?? TRAFFIC_LEASE_MS;
  const key = `${o.keyPrefix}t`;
  let drop: string[] = [];
  return async (perSecond) => {
    const figure = perSecond === null ? '' : String(Math.round(perSecond * 1000) / 1000);
    const [now, all] = await Promise.all([o.client.eval(LUA_TRAFFIC, 0, o.keyPrefix, mine, figure, String(leaseMs), ...drop) as Promise<string>, o.client.hgetall(key)]);
    drop = [];
    const rates = new Map<string, number>();
    for (const [field, value] of Object.entries(all)) {
      const comma = value.lastIndexOf(',');
      const rate = Number(value.slice(0, comma));
      if (!(Number(value.slice(comma + 1)) > Number(now))) drop.push(field);
      else if (Number.isFinite(rate) && rate >= 0) rates.set(field, rate);
    }
    return rates;
  };
}
