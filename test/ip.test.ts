import { describe, expect, it } from 'vitest';
import { createIpMatcher, ipRangeProblem } from '../src/util/ip.js';

describe('allowIps entries: IP literals and CIDR ranges', () => {
  it('accepts addresses and ranges of both families, and says what is wrong with the rest', () => {
    for (const e of ['203.0.113.7', '203.0.113.0/24', '0.0.0.0/0', '2001:db8::1', '2001:db8::/32', '::ffff:10.0.0.1', '10.0.0.0/32']) expect(ipRangeProblem(e), e).toBe('');
    expect(ipRangeProblem('exchange.example')).toBe('is not an IP address or CIDR range');
    expect(ipRangeProblem('203.0.113.300')).toBe('is not an IP address or CIDR range');
    expect(ipRangeProblem('10.0.0.0/33')).toBe('has a prefix length that is not 0-32');
    expect(ipRangeProblem('2001:db8::/129')).toBe('has a prefix length that is not 0-128');
    expect(ipRangeProblem('10.0.0.0/')).toBe('has a prefix length that is not 0-32');
    expect(ipRangeProblem('10.0.0.0/8x')).toBe('has a prefix length that is not 0-32');
  });

  it('matches peers against them, an IPv4 client seen as IPv4-mapped IPv6 included', () => {
    const allowed = createIpMatcher(['203.0.113.0/24', '198.51.100.7', '2001:db8::/32', '::1']);
    for (const ip of ['203.0.113.1', '203.0.113.255', '198.51.100.7', '::ffff:203.0.113.9', '::ffff:198.51.100.7', '2001:db8::42', '0000:0000:0000:0000:0000:0000:0000:0001'])
      expect(allowed(ip), ip).toBe(true);
    for (const ip of ['203.0.114.1', '198.51.100.8', '::ffff:198.51.100.8', '2001:db9::1', '127.0.0.1', '', 'not-an-ip']) expect(allowed(ip), ip).toBe(false);
    expect(createIpMatcher([])('127.0.0.1')).toBe(false);
  });
});
