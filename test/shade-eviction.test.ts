import { describe, expect, it } from 'vitest';
import { createShader } from '../src/pace/shade.js';

const CTX = '~h12d2~300x250';
const site = (id: string) => `x|banner|site|${id}${CTX}`;

/** The reviewer's run: 12,000 one-off sites (min-to-win 1.0), then 2,000 exact notices of hot-site at 3.0. */
function flooded() {
  const s = createShader();
  for (let i = 0; i < 12_000; i++) s.observe(site(`one-${i}`), 1.2, false, 1.0);
  for (let i = 0; i < 2_000; i++) s.observe(site('hot-site'), 3.5, true, 3.0);
  return s;
}

describe('the shader when its table of segments is full', () => {
  it('a new site replaces the least recently observed one, so a hot site after 12,000 one-offs gets its own fit, also after a restart', () => {
    const a = flooded();
    const b = createShader();
    b.restore(JSON.parse(JSON.stringify(a.snapshot())));
    for (const s of [a, b]) {
      expect(s.snapshot().fits.length).toBeLessThanOrEqual(10_000);
      expect(s.model(site('hot-site'))?.observations).toBe(2_000);
      // Its competition is 3.0: the bid sits just above it, not at the one-offs' 1.0.
      const bid = s.shade(site('hot-site'), 10, 0.01);
      expect(bid).toBeGreaterThan(2.9);
      expect(bid).toBeLessThan(3.5);
      // The hierarchy is never evicted: the pooled fit and every prefix saw all 14,000 notices.
      for (const key of ['*', 'x', 'x|banner', 'x|banner|site']) expect(s.model(key)?.observations, key).toBe(14_000);
      // The oldest one-offs went; the most recent stayed.
      expect(s.model(site('one-0'))).toBeUndefined();
      expect(s.model(site('one-11999'))?.observations).toBe(1);
    }
  });

  it('a site first seen once the table is full, then now and then, keeps its fit through a flood of one-off sites', () => {
    const s = createShader({ maxSegments: 100 });
    let hot = 0;
    for (let i = 0; i < 5_000; i++) {
      s.observe(site(`one-${i}`), 1.2, false, 1.0);
      if (i >= 200 && i % 50 === 0) {
        s.observe(site('hot'), 3.5, true, 3.0);
        hot++;
      }
    }
    expect(s.model(site('hot'))?.observations).toBe(hot);
    expect(s.snapshot().fits).toHaveLength(100);
  });

  it('restored into a smaller table, the most recently observed sites are kept, and the prefixes', () => {
    const big = createShader();
    for (let i = 0; i < 500; i++) big.observe(site(`s-${i}`), 1.2, false, 1.0);
    // s-0 observed again: now the most recent.
    big.observe(site('s-0'), 1.2, false, 1.0);
    const small = createShader({ maxSegments: 50 });
    small.restore(JSON.parse(JSON.stringify(big.snapshot())));
    expect(small.snapshot().fits).toHaveLength(50);
    for (const key of ['*', 'x', 'x|banner', 'x|banner|site']) expect(small.model(key)?.observations, key).toBe(501);
    expect(small.model(site('s-0'))?.observations).toBe(2);
    expect(small.model(site('s-499'))).toBeDefined();
    expect(small.model(site('s-1'))).toBeUndefined();
    // 4 prefixes and 46 sites: s-455 to s-499 and s-0. The restored order is the recency order:
    // the next new site evicts the oldest kept, s-455.
    expect(small.model(site('s-454'))).toBeUndefined();
    expect(small.model(site('s-455'))).toBeDefined();
    small.observe(site('new'), 1.2, false, 1.0);
    expect(small.model(site('s-455'))).toBeUndefined();
    expect(small.model(site('s-456'))).toBeDefined();
    expect(small.model(site('s-0'))).toBeDefined();
  });
});
