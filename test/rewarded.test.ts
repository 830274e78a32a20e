import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * A rewarded imp as OpenRTB 2.6 says it (`imp.rwdd`) and as Prebid Server and Prebid Mobile send
 * it in 2.5 (`imp.ext.prebid.is_rewarded_inventory`): a creative declared not rewarded stays off
 * it, one declared rewarded bids only there.
 */
const creative = (id: string, rewarded: boolean) => ({ id, format: 'banner', w: 320, h: 480, rewarded, title: 't', landingUrl: 'https://game.example/' });
const CAMPAIGNS = [
  {
    id: 'game', advertiser: 'game', adomain: ['game.example'], cat: ['IAB9'], goal: { type: 'cpm', valueUsd: 5 }, budget: { dailyUsd: 100 }, maxBidCpmUsd: 10,
    creatives: [creative('plain', false), creative('reward', true)],
  },
];

describe('rewarded imps', () => {
  let dir: string;
  let t: TestBidder;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bidder-rewarded-'));
    for (const f of ['exchanges.yaml', 'currency.yaml']) copyFileSync(join('policies', f), join(dir, f));
    writeFileSync(join(dir, 'campaigns.yaml'), JSON.stringify({ campaigns: CAMPAIGNS }));
    t = await startBidder({}, dir);
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const crid = async (imp: object, headers: Record<string, string> = {}) => {
    // A generous tmax: on a loaded machine the 200 ms default can shed a request before eligibility.
    const req = { id: 'rw', tmax: 3000, imp: [{ id: '1', banner: { w: 320, h: 480 }, ...imp }], app: { id: 'a', bundle: 'com.game.example' } };
    const r = await t.post('/openrtb2/bid', JSON.stringify(req), headers);
    return r.status === 200 ? ((await r.json()) as any).seatbid[0].bid[0].crid : r.status;
  };
  const v25 = { 'x-openrtb-version': '2.5' };

  it('reads Prebid 2.5 is_rewarded_inventory where rwdd is absent', async () => {
    expect(await crid({ ext: { prebid: { is_rewarded_inventory: 1 } } }, v25)).toBe('reward');
    expect(await crid({ ext: { prebid: { is_rewarded_inventory: 0 } } }, v25)).toBe('plain');
    expect(await crid({}, v25)).toBe('plain');
  });

  it('takes rwdd where both are given', async () => {
    expect(await crid({ rwdd: 1 })).toBe('reward');
    expect(await crid({ rwdd: 0, ext: { prebid: { is_rewarded_inventory: 1 } } })).toBe('plain');
  });
});
