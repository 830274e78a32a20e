import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GppModel } from '@iabgpp/cmpapi';
import type { BidRequest } from 'iab-openrtb/v26';
import { describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { createPrivacy } from '../src/eligibility/privacy.js';
import { createFeatureBuilder } from '../src/features/features.js';
import { datasetFromEventLog } from '../src/model/eventlog-data.js';
import { writeBidRecord, type BidRecord } from '../src/eventlog/records.js';
import { ByteWriter } from '../src/json/bytes.js';
import type { ImpContext, UserProfile } from '../src/types.js';
import { startBidder } from './helpers/bidder.js';
import { tcString, RestrictionType } from './helpers/tcf.js';

/**
 * Training the CTR model on a user's data is TCF purpose 10 ("develop and improve services"), which
 * the checks for bidding (purposes 1, 3, 4) do not cover: under GDPR the bid record keeps the user's
 * key, segments and profile only where purpose 10 has consent or legitimate interest, with our
 * vendor's of the same kind and no publisher restriction against it.
 */


const BID_ONLY = tcString({ consents: [1, 3, 4] });
const WITH_TRAINING = tcString({ consents: [1, 3, 4, 10] });

describe('TCF purpose 10: user data kept for training', () => {
  const p = createPrivacy({ vendorId: 5 });
  const gdpr = (consent: string, regs: object = {}) => ({ id: 'r', imp: [{ id: '1', banner: { w: 300, h: 250 } }], regs: { gdpr: 1, ...regs }, user: { buyeruid: 'b-1', consent } }) as unknown as BidRequest;

  it('purposes 1, 3, 4 alone: user data for the bid (check ""), not for training (decide "bid-only")', () => {
    expect(p.check(gdpr(BID_ONLY))).toBe('');
    expect(p.decide(gdpr(BID_ONLY))).toBe('bid-only');
    expect(p.decide(gdpr(WITH_TRAINING))).toBe('');
  });

  it('purpose 10 on legitimate interest counts with our vendor\'s legitimate interest, not without it', () => {
    expect(p.decide(gdpr(tcString({ consents: [1, 3, 4], li: [10], vendorLi: true })))).toBe('');
    expect(p.decide(gdpr(tcString({ consents: [1, 3, 4], li: [10] })))).toBe('bid-only');
    // Consent to purpose 10 with only our vendor's legitimate interest is no basis either.
    expect(p.decide(gdpr(tcString({ consents: [1, 3, 4], vendorLi: true })))).toBe('bid-only');
  });

  it('publisher restrictions on purpose 10 are respected', () => {
    const both = { consents: [1, 3, 4, 10], li: [10], vendorLi: true };
    expect(p.decide(gdpr(tcString({ ...both, restrict: [10, RestrictionType.NOT_ALLOWED] })))).toBe('bid-only');
    expect(p.decide(gdpr(tcString({ consents: [1, 3, 4], li: [10], vendorLi: true, restrict: [10, RestrictionType.REQUIRE_CONSENT] })))).toBe('bid-only');
    expect(p.decide(gdpr(tcString({ consents: [1, 3, 4, 10], restrict: [10, RestrictionType.REQUIRE_CONSENT] })))).toBe('');
    expect(p.decide(gdpr(tcString({ consents: [1, 3, 4, 10], restrict: [10, RestrictionType.REQUIRE_LI], declared10: 'consent' })))).toBe('bid-only');
    expect(p.decide(gdpr(tcString({ ...both, restrict: [10, RestrictionType.REQUIRE_LI], declared10: 'consent' })))).toBe('');
  });

  it('the same in a GPP tcfeuv2 section; a later block still wins; outside GDPR nothing changes', () => {
    const m = new GppModel();
    m.setFieldValue('uspv1', 'OptOutSale', 'N');
    m.decodeSection('tcfeuv2', BID_ONLY);
    const gpp = m.encode();
    expect(p.decide({ id: 'r', imp: [], regs: { gpp } } as unknown as BidRequest)).toBe('bid-only');
    expect(p.check({ id: 'r', imp: [], regs: { gpp } } as unknown as BidRequest)).toBe('');
    expect(p.decide(gdpr(BID_ONLY, { us_privacy: '1YYN' }))).toBe('us-privacy-opt-out');
    expect(p.decide({ id: 'r', imp: [], user: { buyeruid: 'b-1' } } as unknown as BidRequest)).toBe('');
  });
});

describe('the event log under GDPR without purpose 10', () => {
  it('the bid is made with the user\'s data, its record keeps no user key, segments or profile; with purpose 10 they are kept', async () => {
    const t = await startBidder({ tcfVendorId: 5 });
    try {
      const keyed: Record<string, boolean[]> = { 'bid-only': [], training: [] };
      for (const [name, consent] of [['bid-only', BID_ONLY], ['training', WITH_TRAINING]] as const) {
        // Twice, a win between: the second bid is scored with the profile the win made.
        for (let i = 0; i < 2; i++) {
          const res = await t.bid({
            id: `${name}-${i}`,
            imp: [{ id: '1', banner: { w: 300, h: 250 } }],
            site: { id: 's-news', domain: 'news.example', cat: ['IAB12'], page: 'https://news.example/a', publisher: { id: 'pub-1' } },
            device: { ip: '203.0.113.77', os: 'iOS', devicetype: 4, geo: { country: 'DEU' } },
            user: { buyeruid: `buyer-${name}`, consent, data: [{ id: 'dp', segment: [{ id: 'runner' }, { id: 'traveller' }] }] },
            regs: { gdpr: 1 },
          });
          expect(res.status).toBe(200);
          const bid = ((await res.json()) as { seatbid: Array<{ bid: Array<{ nurl: string; price: number }> }> }).seatbid[0].bid[0];
          keyed[name].push(bid.nurl.includes('&uk='));
          if (i === 0) expect((await fetch(t.url + bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(bid.price)))).status).toBe(200);
        }
      }
      // Bidding with the user's data is unchanged: the user key is in the notices either way.
      expect(keyed).toEqual({ 'bid-only': [true, true], training: [true, true] });
      await t.bidder.close();
      const dir = join(t.dir, 'events');
      const records = readdirSync(dir)
        .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'))
        // An empty line is the log's own (a notice written while a bid write is in flight starts a line of its own); readers skip it.
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as { type: string; ctx: ImpContext; profile?: UserProfile; priceCpmUsd: number })
        .filter((r) => r.type === 'bid');
      const of = (id: string) => records.find((r) => r.ctx.requestId === id)!;
      // Not vacuous: with purpose 10 the user's data is kept, a profile by the second bid.
      for (const id of ['training-0', 'training-1']) {
        expect(of(id).ctx.userKey).toMatch(/^[A-Za-z0-9_-]{16}$/);
        expect(of(id).ctx.segments).toEqual(['runner', 'traveller', 'dp']);
        expect(of(id).ctx.userDataWithheld).toBeUndefined();
      }
      expect(of('training-1').profile).toBeDefined();
      for (const id of ['bid-only-0', 'bid-only-1']) {
        const r = of(id);
        expect(r.ctx.userKey).toBe('');
        expect(r.ctx.segments).toEqual([]);
        expect(r.profile).toBeUndefined();
        expect(r.ctx.userDataWithheld).toBe(true);
        // The context and the spend stay.
        expect(r.ctx.domain).toBe('news.example');
        expect(r.priceCpmUsd).toBeGreaterThan(0);
      }
    } finally {
      await t.close();
    }
  });

  it('writeBidRecord leaves the user key, segments and profile out of a record whose user data is withheld', () => {
    const ctx: ImpContext = {
      requestId: 'r', impId: '1', exchange: 'default', isApp: false, siteOrAppId: 's', publisherId: 'p', domain: 'd.example', categories: ['IAB12'], deviceType: 4, os: 'ios',
      country: 'DEU', region: '', hour: 12, format: 'banner', w: 300, h: 250, dealId: '', userKey: 'AAAAAAAAAAAAAAAA', segments: ['runner'], userDataAllowed: true, userDataWithheld: true,
    };
    const rec: BidRecord = { type: 'bid', ts: 1, bidId: 'b', campaignId: 'c', creativeId: 'cr', priceCpmUsd: 1, pctr: 0.01, modelVersion: 'm', ctx, profile: { seenCategories: ['IAB1'], clickedCategories: [], campaignImpressions: { c: 1 } } };
    const w = new ByteWriter(1024);
    writeBidRecord(w, rec);
    const { profile: _, ...contextual } = rec;
    expect(JSON.parse(w.copy().toString())).toEqual({ ...contextual, ctx: { ...ctx, userKey: '', segments: [] } });
  });

  it('training reads a record marked withheld as contextual, whatever user data another writer left in it', async () => {
    const campaigns = loadPolicies('policies').campaigns;
    const c = campaigns[0];
    const ctx: ImpContext = {
      requestId: 'r', impId: '1', exchange: 'default', isApp: false, siteOrAppId: 's', publisherId: 'p', domain: 'd.example', categories: ['IAB12'], deviceType: 4, os: 'ios',
      country: 'DEU', region: '', hour: 12, format: 'banner', w: 300, h: 250, dealId: '', userKey: 'AAAAAAAAAAAAAAAA', segments: ['runner'], userDataAllowed: true,
    };
    const profile: UserProfile = { seenCategories: ['IAB12'], clickedCategories: ['IAB12'], campaignImpressions: { [c.id]: 3 } };
    const dir = mkdtempSync(join(tmpdir(), 'withheld-'));
    let files = 0;
    try {
      const rowOf = async (bidCtx: ImpContext, p?: UserProfile) => {
        const file = join(dir, `${files++}.ndjson`);
        const base = { bidId: 'b', campaignId: c.id, creativeId: c.creatives[0].id };
        writeFileSync(file, `${JSON.stringify({ type: 'bid', ts: 1, ...base, priceCpmUsd: 1, pctr: 0.01, modelVersion: 'm', ctx: bidCtx, ...(p ? { profile: p } : {}) })}\n${JSON.stringify({ type: 'win', ts: 2, ...base, priceCpmUsd: 1 })}\n`);
        const { data, stats } = await datasetFromEventLog([file], campaigns, createFeatureBuilder(), { noticeTtlMs: 1, untilMs: Infinity });
        expect(stats.badLines).toBe(0);
        expect(data.rows).toBe(1);
        return [...data.sparse, ...data.dense];
      };
      const contextual = await rowOf({ ...ctx, userKey: '', segments: [], userDataAllowed: false });
      // Not vacuous: the user's data changes the row.
      expect(await rowOf(ctx, profile)).not.toEqual(contextual);
      expect(await rowOf({ ...ctx, userDataWithheld: true }, profile)).toEqual(contextual);
      // As the bidder writes it: stripped, allowed for the bid.
      expect(await rowOf({ ...ctx, userKey: '', segments: [], userDataWithheld: true })).toEqual(contextual);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
