import { describe, expect, it } from 'vitest';
import { mulberry32, sampleNormal } from '../src/random/random.js';
import { createShader, normCdf } from '../src/pace/shade.js';

/** Highest competing bid in the test market: log-normal, median 1.5 CPM, sigma 0.5. */
const MU = Math.log(1.5);
const SIGMA = 0.5;

function optimalBid(value: number): number {
  let best = 0;
  let bestSurplus = 0;
  for (let b = 0.001; b < value; b += 0.001) {
    const s = (value - b) * normCdf((Math.log(b) - MU) / SIGMA);
    if (s > bestSurplus) {
      bestSurplus = s;
      best = b;
    }
  }
  return best;
}

/** Runs first-price auctions; returns realised surplus and spend of shaded bidding. */
function run(withMinToWin: boolean, seed: number, n: number, truthful = false) {
  const shader = createShader();
  let low = Infinity;
  let excess = -Infinity;
  const r = mulberry32(seed);
  let surplus = 0;
  let spend = 0;
  let wins = 0;
  for (let i = 0; i < n; i++) {
    const value = 2.5 * Math.exp(0.4 * sampleNormal(r));
    const h = Math.exp(MU + SIGMA * sampleNormal(r));
    const bid = truthful ? value : shader.shade('s1', value, 0.1);
    low = Math.min(low, bid);
    excess = Math.max(excess, bid - value);
    const won = bid >= h;
    if (won) {
      surplus += value - bid;
      spend += bid;
      wins++;
    }
    shader.observe('s1', bid, won, withMinToWin ? h : undefined);
  }
  expect(low).toBeGreaterThanOrEqual(0.1);
  expect(excess).toBeLessThanOrEqual(0);
  return { shader, surplus, spend, wins };
}

describe('first-price bid shading', () => {
  it('bids the value while it knows nothing, and never leaves [floor, value]', () => {
    const s = createShader();
    expect(s.shade('x', 3, 0.5)).toBe(3);
    for (let i = 0; i < 200; i++) s.observe('x', 2, i % 2 === 0, 1.5);
    expect(s.shade('x', 3, 0.5)).toBeLessThan(3);
    expect(s.shade('x', 3, 2.9)).toBeGreaterThanOrEqual(2.9);
    expect(s.shade('x', 3, 2.9)).toBeLessThanOrEqual(3);
    expect(s.shade('x', 3, 5)).toBe(3);
    expect(s.shade('x', 0, 0.5)).toBe(0);
  });

  it('learns the competing-bid distribution from min-to-win', () => {
    const { shader } = run(true, 1, 20_000);
    const m = shader.model('s1')!;
    expect(m.mu).toBeCloseTo(MU, 1);
    expect(m.sigma).toBeCloseTo(SIGMA, 1);
  });

  it('learns it from wins and losses alone (censored observations)', () => {
    const { shader } = run(false, 2, 40_000);
    const m = shader.model('s1')!;
    expect(Math.abs(m.mu - MU)).toBeLessThan(0.1);
    expect(Math.abs(m.sigma - SIGMA)).toBeLessThan(0.1);
  });

  it('converges to the surplus-maximising bid and beats truthful bidding on cost per win', () => {
    const { shader, surplus, spend, wins } = run(true, 3, 20_000);
    for (const value of [1.5, 2.5, 4]) {
      const b = shader.shade('s1', value, 0);
      expect(b).toBeLessThan(value);
      expect(Math.abs(b - optimalBid(value))).toBeLessThan(0.05 * value);
    }
    // Truthful first-price bidding pays the whole value on every win: no surplus, dearer wins.
    const truthful = run(true, 3, 20_000, true);
    expect(truthful.surplus).toBe(0);
    expect(surplus).toBeGreaterThan(0.2 * 20_000 * 0.5);
    expect(spend / wins).toBeLessThan(0.85 * (truthful.spend / truthful.wins));
  });

  it('keeps segments apart and falls back to the pooled model for thin segments', () => {
    const s = createShader({ minObservations: 20 });
    for (let i = 0; i < 500; i++) s.observe('cheap', 1, true, 0.3);
    for (let i = 0; i < 500; i++) s.observe('dear', 1, false, 3);
    expect(s.shade('cheap', 4, 0)).toBeLessThan(s.shade('dear', 4, 0));
    expect(s.model('thin')).toBeUndefined();
    expect(s.shade('thin', 4, 0)).toBeCloseTo(s.shade('*', 4, 0), 9);
  });
  it('learns each busy site apart, and a rare one as its parent moved toward what it saw', () => {
    const shader = createShader();
    const r = mulberry32(11);
    // Two busy sites of one exchange and format: competition around 0.5 and 3 CPM.
    const sites = [
      { key: 'x|banner|site|cheap', mu: Math.log(0.5) },
      { key: 'x|banner|site|dear', mu: Math.log(3) },
    ];
    for (let i = 0; i < 4000; i++) {
      const s = sites[i % 2];
      const h = Math.exp(s.mu + 0.3 * sampleNormal(r));
      shader.observe(s.key, 2, h <= 2, h);
    }
    expect(shader.model('x|banner|site|cheap')!.mu).toBeCloseTo(Math.log(0.5), 1);
    expect(shader.model('x|banner|site|dear')!.mu).toBeCloseTo(Math.log(3), 1);
    // Their parent holds both; a site seen a few times uses it, an unseen exchange the pool.
    const parent = shader.model('x|banner|site')!;
    expect(parent.observations).toBe(4000);
    expect(parent.sigma).toBeGreaterThan(0.6);
    // A site seen five times is its parent moved part of the way toward what it saw; a site
    // never seen is priced as its parent, an unseen exchange as the pool.
    for (let i = 0; i < 5; i++) shader.observe('x|banner|site|rare', 2, true, 0.2);
    const rare = shader.model('x|banner|site|rare')!;
    expect(rare.mu).toBeLessThan(parent.mu - 0.5);
    expect(rare.mu).toBeGreaterThan(Math.log(0.2));
    expect(shader.shade('x|banner|site|rare', 4, 0.01)).toBeLessThan(shader.shade('x|banner|site', 4, 0.01));
    expect(shader.shade('x|banner|site|unseen', 4, 0.01)).toBe(shader.shade('x|banner|site', 4, 0.01));
    expect(shader.shade('x|banner|site|cheap', 4, 0.01)).toBeLessThan(shader.shade('x|banner|site|dear', 4, 0.01));
    expect(shader.shade('y|video|app|new', 4, 0.01)).toBe(shader.shade('*', 4, 0.01));
  });

  it('prices thin sites by what their few notices said, not by their parent alone', () => {
    // 400 sites whose competition differs by site (log-sd 0.7), each seen about 15 times a run:
    // the case of a long tail of placements. One shader is given the site, the other only the
    // parent path (what a rule that waits for enough notices per site prices a thin site by).
    const r = mulberry32(5);
    const siteMu = Array.from({ length: 400 }, () => Math.log(1.5) + 0.7 * sampleNormal(r));
    const bySite = createShader();
    const byParent = createShader();
    let siteSurplus = 0;
    let parentSurplus = 0;
    for (let i = 0; i < 6_000; i++) {
      const k = Math.floor(r() * siteMu.length);
      const h = Math.exp(siteMu[k] + 0.4 * sampleNormal(r));
      const value = 4;
      const mtw = r() < 0.5 ? h : undefined;
      const a = bySite.shade(`x|banner|site|s${k}`, value, 0.01);
      const b = byParent.shade('x|banner|site', value, 0.01);
      if (i >= 3_000) {
        // Expected surplus against the site's true competition, so the draws of H add no noise.
        siteSurplus += (value - a) * normCdf((Math.log(a) - siteMu[k]) / 0.4);
        parentSurplus += (value - b) * normCdf((Math.log(b) - siteMu[k]) / 0.4);
      }
      bySite.observe(`x|banner|site|s${k}`, a, a >= h, mtw);
      byParent.observe('x|banner|site', b, b >= h, mtw);
    }
    expect(bySite.model('x|banner|site|s0')!.observations).toBeLessThan(30);
    expect(siteSurplus).toBeGreaterThan(1.05 * parentSurplus);
  });

  it("prices a thin site by its floors against its parent's where floors follow the competition, and ignores floors that do not", () => {
    // 400 sites as above, each seen about 15 times. Where floors are set from the site's prices (a
    // publisher's price rules: 0.15-0.40 of its median, on 60 % of requests), a site whose floors
    // sit above its parent's is dearer, and the shader should price it so from its first request;
    // where floors are drawn apart from the competition, they should change nothing.
    const market = (floors: 'follow' | 'apart') => {
      const r = mulberry32(5);
      const siteMu = Array.from({ length: 400 }, () => Math.log(1.5) + 0.7 * sampleNormal(r));
      const apartMu = Array.from({ length: 400 }, () => Math.log(1.5) + 0.7 * sampleNormal(r));
      const shader = createShader();
      let surplus = 0;
      for (let i = 0; i < 6_000; i++) {
        const k = Math.floor(r() * siteMu.length);
        const h = Math.exp(siteMu[k] + 0.4 * sampleNormal(r));
        const u = 0.15 + 0.25 * r();
        const floor = r() < 0.6 ? Math.exp(floors === 'follow' ? siteMu[k] : apartMu[k]) * u : 0;
        const value = 4;
        const bid = shader.shade(`x|banner|site|s${k}`, value, floor);
        // Expected surplus against the site's true competition, so the draws of H add no noise.
        if (i >= 3_000) surplus += (value - bid) * normCdf((Math.log(bid) - siteMu[k]) / 0.4);
        shader.observe(`x|banner|site|s${k}`, bid, bid >= h, r() < 0.5 ? h : undefined);
      }
      return { shader, surplus };
    };
    const follow = market('follow');
    const apart = market('apart');
    // Before the floors were read, both bought the same surplus within 0.4 %.
    expect(follow.surplus).toBeGreaterThan(1.02 * apart.surplus);
    expect(follow.shader.snapshot().floorWeight).toBeGreaterThan(0.4);
    expect(Math.abs(apart.shader.snapshot().floorWeight!)).toBeLessThan(0.15);
    // A site never noticed, whose floor says it is dear, is priced above one whose floor says it is cheap.
    const dear = follow.shader.shade('x|banner|site|new-dear', 4, 1.2);
    const cheap = follow.shader.shade('x|banner|site|new-cheap', 4, 0.2);
    expect(dear).toBeGreaterThan(1.2 * cheap);
    // Kept across a restart: the floors and their weight travel in the snapshot.
    const restored = createShader();
    restored.restore(JSON.parse(JSON.stringify(follow.shader.snapshot())));
    expect(restored.shade('x|banner|site|s7', 4, 0.3)).toBeCloseTo(follow.shader.shade('x|banner|site|s7', 4, 0.3), 9);
    // A file's weight or floor means past what a shader learns are refused, as its fits are.
    const snap = follow.shader.snapshot();
    expect(() => createShader().restore({ ...snap, floorWeight: 50 })).toThrow('not a shader snapshot');
    expect(() => createShader().restore({ ...snap, floors: [['x|banner|site|s1', 1e300, 3]] })).toThrow('not a shader snapshot');
  });

  it('learns context effects every site shares (the keys after ~), and shades closer to the best bid with them', () => {
    // Ten sites whose competition differs by site and, on every site alike, by the hour:
    // ln H = site + (peak hour ? +0.6 : -0.6) + 0.3 N(0, 1).
    const sites = Array.from({ length: 10 }, (_, k) => ({ key: `x|banner|site|s${k}`, mu: Math.log(1 + k / 5) }));
    const surplusOf = (withContext: boolean) => {
      const shader = createShader();
      const r = mulberry32(21);
      let surplus = 0;
      for (let i = 0; i < 60_000; i++) {
        const site = sites[i % sites.length];
        const peak = r() < 0.5;
        const h = Math.exp(site.mu + (peak ? 0.6 : -0.6) + 0.3 * sampleNormal(r));
        const segment = withContext ? `${site.key}~${peak ? 'h20' : 'h04'}` : site.key;
        const value = 4;
        const bid = shader.shade(segment, value, 0.01);
        const won = bid >= h;
        if (won && i >= 30_000) surplus += value - bid;
        shader.observe(segment, bid, won, r() < 0.5 ? h : undefined);
      }
      return { shader, surplus };
    };
    const ctx = surplusOf(true);
    // The peak hour is dearer on every site, by about the 1.2 it was built with.
    const gap = ctx.shader.shade('x|banner|site|s3~h20', 4, 0.01) / ctx.shader.shade('x|banner|site|s3~h04', 4, 0.01);
    expect(gap).toBeGreaterThan(1.5);
    // The segment's own fit is the path's, whatever the context keys.
    expect(ctx.shader.model('x|banner|site|s3~h20')).toEqual(ctx.shader.model('x|banner|site|s3'));
    // Knowing the hour buys more surplus over the second half than one competition per site.
    expect(ctx.surplus).toBeGreaterThan(1.15 * surplusOf(false).surplus);
  });

  it("starts a new hour's effect where the hour before left it on the same device, and other new keys at 0", () => {
    // At 23:00 the phones' competition is dearer than the desktops' (ln H +0.5 and -0.5 around each
    // site's); the first bids after midnight, before any notice of hour 0, should still tell them apart.
    const shader = createShader();
    const r = mulberry32(8);
    for (let i = 0; i < 20_000; i++) {
      const site = `x|banner|site|s${i % 5}`;
      const phone = i % 2 === 0;
      const h = Math.exp(Math.log(1 + (i % 5) / 4) + (phone ? 0.5 : -0.5) + 0.3 * sampleNormal(r));
      const segment = `${site}~h23d${phone ? 4 : 2}~300x250`;
      const bid = shader.shade(segment, 4, 0.01);
      shader.observe(segment, bid, bid >= h, r() < 0.5 ? h : undefined);
    }
    const at = (key: string) => shader.shade(`x|banner|site|s2~${key}~300x250`, 4, 0.01);
    expect(at('h23d4') / at('h23d2')).toBeGreaterThan(1.5);
    expect(at('h0d4')).toBeCloseTo(at('h23d4'), 6);
    expect(at('h0d2')).toBeCloseTo(at('h23d2'), 6);
    // Learnt from there: an hour-0 notice moves the effect from the hour before's, not from 0.
    const before = new Map(shader.snapshot().effects).get('h23d4')!;
    shader.observe('x|banner|site|s2~h0d4~300x250', at('h0d4'), true, undefined);
    expect(Math.abs(new Map(shader.snapshot().effects).get('h0d4')! - before)).toBeLessThan(0.02);
    // Nothing to start from: an hour with no hour before learnt, and a size, start at 0.
    expect(shader.shade('x|banner|site|s2~h5d4~300x250', 4, 0.01)).toBeCloseTo(shader.shade('x|banner|site|s2~h5d2~300x250', 4, 0.01), 6);
    expect(shader.shade('x|banner|site|s2~h23d4~728x90', 4, 0.01)).toBeCloseTo(shader.shade('x|banner|site|s2~h23d4', 4, 0.01), 6);
  });

  it('moves each fit a bounded amount on one min-to-win in the wrong unit, and shades as before', () => {
    const s = createShader();
    const seg = 'ex|banner|site|s1~h3d2~300x250';
    const r = mulberry32(5);
    // A tight market (median 2 CPM, log-sd 0.3), min-to-win on half the notices.
    for (let i = 0; i < 300; i++) {
      const h = Math.exp(Math.log(2) + 0.3 * sampleNormal(r));
      const b = s.shade(seg, 10, 0.1);
      s.observe(seg, b, h <= b, i % 2 === 0 ? h : undefined);
    }
    const fits = ['*', 'ex', 'ex|banner', 'ex|banner|site', 'ex|banner|site|s1'];
    const before = fits.map((f) => s.model(f)!);
    const bid = s.shade(seg, 10, 0.1);
    // A loss whose min-to-win came in micros: ~20 sigma out, which unclipped sent sigma to its clamp.
    s.observe(seg, bid, false, bid * 1.2e6);
    fits.forEach((f, i) => {
      const b = before[i];
      const a = s.model(f)!;
      const eta = Math.max(0.02, 1 / (b.observations + 5));
      // The clip at 3: ln sigma moves at most eta x (3^2 - 0.995) / 2, mu at most eta x 3 sigma.
      expect(Math.abs(Math.log(a.sigma / b.sigma)), f).toBeLessThanOrEqual((eta * (9 - 0.995)) / 2 + 1e-9);
      expect(Math.abs(a.mu - b.mu), f).toBeLessThanOrEqual(eta * 3 * b.sigma + 1e-9);
    });
    expect(s.model('*')!.sigma).toBeLessThan(1.1 * before[0].sigma);
    expect(s.shade(seg, 10, 0.1)).toBeGreaterThan(0.9 * bid);
  });
});

describe('what the shader remembers', () => {
  it('keeps at most maxSegments context effects, however many contexts requests bring, and restores no more', () => {
    const s = createShader({ maxSegments: 50 });
    for (let i = 0; i < 500; i++) s.observe(`x|banner|site|s~h${i % 24}d${i}~${i}x${i}`, 1, i % 2 === 0, 0.5);
    expect(s.snapshot().effects.length).toBe(50);
    const big = createShader({ maxSegments: 5000 });
    for (let i = 0; i < 500; i++) big.observe(`x|banner|site|s~h${i % 24}d${i}~${i}x${i}`, 1, i % 2 === 0, 0.5);
    const restored = createShader({ maxSegments: 50 });
    restored.restore(big.snapshot());
    expect(restored.snapshot().effects.length).toBe(50);
  });
});
