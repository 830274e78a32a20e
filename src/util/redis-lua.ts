/**
 * Lua that sets `now` (epoch ms) from ARGV[arg], or, where that is not a number ('t'), from
 * Redis's own clock, the one clock every bidder of a fleet shares. TIME is not deterministic, so a
 * script that writes after reading it replicates its effects, not itself (needed before Redis 5).
 */
export function luaNow(arg: number): string {
  return `
local now = tonumber(ARGV[${arg}])
if not now then
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;
}
