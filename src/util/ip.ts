import { BlockList, isIP } from 'node:net';

/**
 * An `allowIps` entry: an IP literal (`203.0.113.7`, `2001:db8::1`) or a CIDR range
 * (`203.0.113.0/24`, `2001:db8::/32`), as exchanges publish the addresses they call from. Returns
 * why it is not one, or '' when it is.
 */
export function ipRangeProblem(entry: string): string {
  const slash = entry.indexOf('/');
  const address = slash < 0 ? entry : entry.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return 'is not an IP address or CIDR range';
  if (slash < 0) return '';
  const bits = entry.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return `has a prefix length that is not 0-${max}`;
  return '';
}

/**
 * Whether a peer address (uWS's text form) is among `entries` (valid per `ipRangeProblem`). An
 * IPv4 client seen on a dual-stack socket as `::ffff:a.b.c.d` matches its IPv4 entries.
 */
export function createIpMatcher(entries: readonly string[]): (ip: string) => boolean {
  const list = new BlockList();
  for (const e of entries) {
    const slash = e.indexOf('/');
    const address = slash < 0 ? e : e.slice(0, slash);
    const type = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    if (slash < 0) list.addAddress(address, type);
    else list.addSubnet(address, Number(e.slice(slash + 1)), type);
  }
  return (ip) => {
    const family = isIP(ip);
    return family !== 0 && list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  };
}
