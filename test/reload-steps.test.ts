import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCatalogYaml } from '../src/catalog/generate.js';
import { loadPolicies, type Policies } from '../src/config/policies.js';
import { createPrivacy } from '../src/eligibility/privacy.js';
import { createFeatureBuilder } from '../src/features/features.js';
import { createLive, type Live, type LiveOptions, type LiveState } from '../src/live/live.js';
import { createMetrics } from '../src/metrics/metrics.js';
import { createValuePacer, mulberry32, type PacedCampaign, type ValuePacer } from '../src/pace/index.js';
import { PriceLandscape } from '../src/pace/landscape.js';
import { PREPARE_STEP_CAMPAIGNS } from '../src/pace/value-pacer.js';

/**
 * A policy reload of thousands of campaigns on a serving thread: what the swap installs is built
 * before it, in steps with a turn of the event loop between, so that no turn holds the loop for the
 * whole catalog (at 5,000 campaigns the swap's turn held it 190-260 ms, beyond many an exchange's
 * tmax). The pacer prepared ahead must decide exactly as one configured in one go.
 */

const HOUR = 3_600_000;
// The Saturday before the United States' daylight saving starts (2026-03-08, 07:00 UTC).
const SAT = Date.UTC(2026, 2, 7);

function campaign(id: string, dailyUsd: number, targeting?: PacedCampaign['targeting'], pacing?: 'even' | 'asap'): PacedCampaign {
  return { id, budget: { dailyUsd, ...(pacing && { pacing }) }, ...(targeting && { targeting }) };
}

/** c0-c9, then the reload's set: c5-c9 kept (budgets, hours, zones changed), c10-c14 new. */
const FIRST = [
  campaign('c0', 5),
  campaign('c1', 3, { hours: [8, 9, 10, 11, 12] }),
  campaign('c2', 4, { hours: [13, 14, 15, 16, 17, 18], timeZone: 'America/New_York' }),
  campaign('c3', 2, undefined, 'even'),
  campaign('c4', 2, undefined, 'asap'),
  campaign('c5', 6),
  campaign('c6', 3, { hours: [0, 1, 2, 3, 20, 21, 22, 23] }),
  campaign('c7', 5, { hours: [9, 10, 11, 12, 13, 14], timeZone: 'America/New_York' }),
  campaign('c8', 2, undefined, 'even'),
  campaign('c9', 4, { hours: [6, 7, 8, 9] }),
];
const NEXT = (): PacedCampaign[] => [
  campaign('c5', 9),
  campaign('c6', 3, { hours: [0, 1, 2, 3, 4, 5, 6] }),
  campaign('c7', 5, { hours: [9, 10, 11, 12, 13, 14], timeZone: 'Europe/London' }),
  campaign('c8', 3, undefined, 'even'),
  campaign('c9', 4, { hours: [6, 7, 8, 9], timeZone: 'America/New_York' }),
  campaign('c10', 4),
  campaign('c11', 3, { hours: [10, 11, 12, 13, 14, 15, 16] }),
  campaign('c12', 5, { hours: [8, 9, 10, 11, 12, 13, 14, 15, 16, 17], timeZone: 'America/New_York' }),
  campaign('c13', 2, undefined, 'even'),
  campaign('c14', 3, undefined, 'asap'),
];
const IDS = Array.from({ length: 15 }, (_, i) => `c${i}`);

type Clocked = { t: { now: number }; pacer: ValuePacer };

function startPacer(start: number): Clocked {
  const t = { now: start };
  return { t, pacer: createValuePacer({ clock: () => t.now, random: mulberry32(7), campaigns: FIRST, slotMs: 60_000 }) };
}

/** Opportunities, wins and losses for every campaign every 7 minutes over [from, to): what the pacer answered, and its state after. */
function drive(x: Clocked, from: number, to: number, seed: number): unknown {
  const rnd = mulberry32(seed);
  const answers: number[] = [];
  for (let now = from; now < to; now += 7 * 60_000) {
    x.t.now = now;
    for (const id of IDS) {
      const v = 0.5 + 3 * rnd();
      const m = x.pacer.multiplier(id, now, { valueCpmUsd: v, firstPrice: rnd() < 0.3 });
      answers.push(m);
      const price = 0.5 + 2 * rnd();
      if (m * v >= price) x.pacer.onWin(id, `${id}-0`, price, now, 0.01);
      else if (m > 0) x.pacer.onLoss(id, `${id}-0`, m * v, undefined, now);
    }
  }
  return { answers, inspect: IDS.map((id) => x.pacer.inspect(id, to)), snapshot: x.pacer.snapshot() };
}

describe('value pacer prepared ahead of a reload', () => {
  it('builds each new campaign in steps with a pause between, and the configure that follows builds none', async () => {
    let priors = 0;
    const prior = () => (priors++, PriceLandscape.logNormal(1, 1, 20));
    const pacer = createValuePacer({ clock: () => SAT, random: mulberry32(1), campaigns: FIRST, prior });
    const n = 2 * PREPARE_STEP_CAMPAIGNS + 7;
    const next = [...NEXT(), ...Array.from({ length: n - 10 }, (_, i) => campaign(`n${i}`, 1 + (i % 5)))];
    priors = 0;
    let pauses = 0;
    await pacer.prepare(next, async () => void pauses++);
    expect(pauses).toBe(Math.ceil(n / PREPARE_STEP_CAMPAIGNS) - 1);
    // One prior per campaign not paced yet (c10-c14 and the n*), built ahead; none in configure.
    expect(priors).toBe(n - 5);
    pacer.configure(next);
    expect(priors).toBe(n - 5);
    // What was prepared is taken once: a configure after builds its paces itself (c15), but for the
    // campaigns the reload dropped today (c0-c4), which resume the paces they had.
    pacer.configure([...FIRST, campaign('c15', 1)]);
    expect(priors).toBe(n - 5 + 1);
  });

  it('waits for each pause before the next step', async () => {
    const pacer = createValuePacer({ clock: () => SAT, random: mulberry32(1), campaigns: [] });
    const next = Array.from({ length: 2 * PREPARE_STEP_CAMPAIGNS + 1 }, (_, i) => campaign(`n${i}`, 1));
    let release = () => {};
    let pauses = 0;
    const done = pacer.prepare(next, () => new Promise<void>((resolve) => ((pauses++), (release = resolve))));
    for (let step = 1; step <= 2; step++) {
      await new Promise((resolve) => setImmediate(resolve));
      expect(pauses).toBe(step);
      release();
    }
    await done;
    expect(pauses).toBe(2);
  });

  // Prepared at 10:00 and configured at 10:03 the same day; prepared on the Saturday and configured
  // on the Monday, after New York's clocks moved (its campaigns' UTC hours with them).
  for (const [what, prepareAt, configureAt] of [
    ['the same day', SAT + 10 * HOUR, SAT + 10 * HOUR + 180_000],
    ['two days later, across a daylight saving change', SAT + 23 * HOUR, SAT + 2 * 24 * HOUR + 9 * HOUR],
  ] as const) {
    it(`decides as a pacer configured in one go when configured ${what}`, async () => {
      const ahead = startPacer(SAT);
      const inOneGo = startPacer(SAT);
      expect(drive(ahead, SAT, prepareAt, 1)).toEqual(drive(inOneGo, SAT, prepareAt, 1));
      const next = NEXT();
      ahead.t.now = prepareAt;
      await ahead.pacer.prepare(next, async () => {});
      ahead.t.now = inOneGo.t.now = configureAt;
      ahead.pacer.configure(next);
      inOneGo.pacer.configure(next);
      const after = drive(ahead, configureAt, configureAt + 30 * HOUR, 2);
      expect(after).toEqual(drive(inOneGo, configureAt, configureAt + 30 * HOUR, 2));
      expect((after as { answers: number[] }).answers.some((m) => m > 0)).toBe(true);
    });
  }

  it('builds anew the campaigns a configure is given other than those prepared', async () => {
    const ahead = startPacer(SAT);
    const inOneGo = startPacer(SAT);
    drive(ahead, SAT, SAT + 5 * HOUR, 3);
    drive(inOneGo, SAT, SAT + 5 * HOUR, 3);
    await ahead.pacer.prepare(NEXT(), async () => {});
    // Same ids, other objects: c10 and c5 with other budgets, c12 without its hours.
    const other = NEXT().map((c) => (c.id === 'c10' || c.id === 'c5' ? campaign(c.id, 1) : c.id === 'c12' ? campaign(c.id, 5) : c));
    ahead.pacer.configure(other);
    inOneGo.pacer.configure(other);
    expect(drive(ahead, SAT + 5 * HOUR, SAT + 20 * HOUR, 4)).toEqual(drive(inOneGo, SAT + 5 * HOUR, SAT + 20 * HOUR, 4));
  });
});

function policiesOf(dir: string, n: number, seed: number): Policies {
  writeFileSync(join(dir, 'campaigns.yaml'), generateCatalogYaml({ campaigns: n, seed }));
  return loadPolicies(dir);
}

describe('policy reload of a large catalog on the serving thread', () => {
  const CAMPAIGNS = 2 * PREPARE_STEP_CAMPAIGNS + 100;
  let dir: string;
  let first: Policies;
  let second: Policies;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'reload-steps-'));
    for (const f of ['exchanges.yaml', 'currency.yaml']) copyFileSync(join('policies', f), join(dir, f));
    writeFileSync(join(dir, 'bidder.yaml'), `ledger:\n  journalPath: ${join(dir, 'ledger')}\n`);
    first = policiesOf(dir, CAMPAIGNS, 1);
    second = policiesOf(dir, CAMPAIGNS, 2);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A live state over `first`, the real value pacer behind it, and what each hook saw. */
  async function start(applyPolicies: LiveOptions['applyPolicies'] = async () => []) {
    const clock = () => SAT + 10 * HOUR;
    let priors = 0;
    const pacer = createValuePacer({ clock, random: mulberry32(1), campaigns: first.campaigns, prior: () => (priors++, PriceLandscape.logNormal(1, 1, 20)) });
    const seen = { prepared: [] as unknown[], pauses: 0, configured: [] as unknown[], priorsInConfigure: -1, retiredAtConfigure: '', servingAtConfigure: null as LiveState | null, servingTurnAfter: null as LiveState | null };
    const retiredPath = join(dir, `retired-${Math.random().toString(36).slice(2)}.json`);
    const live: Live = await createLive({
      policiesDir: dir,
      policies: first,
      backend: 'cpu',
      features: createFeatureBuilder(),
      metrics: createMetrics({ exchanges: [...first.exchanges.keys()], campaigns: first.campaigns.map((c) => c.id) }),
      logger: pino({ level: 'silent' }),
      eligibility: { privacy: createPrivacy(), clock, userKey: () => '', frequency: () => 0 },
      applyPolicies,
      preparePacer: (campaigns, pause) => {
        seen.prepared.push(campaigns);
        return pacer.prepare(campaigns, () => (seen.pauses++, pause()));
      },
      configurePacer: (campaigns) => {
        seen.configured.push(campaigns);
        const before = priors;
        pacer.configure(campaigns);
        seen.priorsInConfigure = priors - before;
        seen.servingAtConfigure = live.current();
        seen.retiredAtConfigure = readFileSync(retiredPath, 'utf8');
        setImmediate(() => (seen.servingTurnAfter = live.current()));
      },
      onPolicies: () => {},
      retiredPath,
    });
    return { live, pacer, seen };
  }

  it('serves the running state in every turn until one turn installs all of the new one, built before it', async () => {
    const { live, seen } = await start();
    const old = { state: live.current(), policies: live.policies(), byId: live.campaignsById() };
    const oldCampaign = first.campaigns[0];
    // A heartbeat of the loop: what a request arriving in each turn would read.
    const turns: Array<'old' | 'new' | 'mixed'> = [];
    let reloading = true;
    const beat = () => {
      const s = live.current();
      const isOld = s === old.state && live.policies() === old.policies && live.campaignsById() === old.byId && live.landingUrl(oldCampaign.id, oldCampaign.creatives[0].id) === oldCampaign.creatives[0].landingUrl;
      const isNew = s !== old.state && live.policies().campaigns === second.campaigns && live.campaignsById().has(second.campaigns[0].id) && !live.campaignsById().has(oldCampaign.id);
      turns.push(isOld ? 'old' : isNew ? 'new' : 'mixed');
      if (reloading) setImmediate(beat);
    };
    setImmediate(beat);
    const r = await live.reloadPolicies(second);
    reloading = false;
    await new Promise((resolve) => setImmediate(resolve));
    expect(r.ok).toBe(true);
    expect(turns).not.toContain('mixed');
    // The creatives' features, the maps, the pacer and the removed creatives each built in steps
    // of campaigns: many turns on the old state, then the new from the first turn after the swap.
    expect(turns.lastIndexOf('old')).toBeGreaterThan(4 * (Math.ceil(CAMPAIGNS / PREPARE_STEP_CAMPAIGNS) - 1));
    expect(turns.slice(turns.indexOf('new'))).not.toContain('old');
    // The pacer's campaigns were prepared in steps, then configured once without building a pace.
    expect(seen.prepared).toEqual([second.campaigns]);
    expect(seen.pauses).toBe(Math.ceil(CAMPAIGNS / PREPARE_STEP_CAMPAIGNS) - 1);
    expect(seen.configured).toHaveLength(1);
    expect(seen.configured[0]).toBe(seen.prepared[0]);
    expect(seen.priorsInConfigure).toBe(0);
    // The swap's turn: the old state until it ends, the new one in the next turn; the removed
    // creatives' landing pages were written before it.
    expect(seen.servingAtConfigure).toBe(old.state);
    expect(seen.servingTurnAfter).toBe(live.current());
    expect(seen.retiredAtConfigure).toContain(oldCampaign.creatives[0].landingUrl);
    expect(live.landingUrl(oldCampaign.id, oldCampaign.creatives[0].id)).toBe(oldCampaign.creatives[0].landingUrl);
    expect(live.campaignsById().has(oldCampaign.id)).toBe(false);
    live.close();
  });

  it('a reload refused prepares nothing and changes nothing', async () => {
    const { live, seen } = await start(async () => {
      throw Object.assign(new Error('refused'), { problems: ['budget of c0 refused'] });
    });
    const before = { state: live.current(), policies: live.policies(), byId: live.campaignsById() };
    expect(await live.reloadPolicies(second)).toEqual({ ok: false, problems: ['budget of c0 refused'] });
    expect(seen.prepared).toEqual([]);
    expect(seen.configured).toEqual([]);
    expect(live.current()).toBe(before.state);
    expect(live.policies()).toBe(before.policies);
    expect(live.campaignsById()).toBe(before.byId);
    live.close();
  });
});
