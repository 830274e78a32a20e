import { GppModel, Sections } from '@iabgpp/cmpapi';
import type { BidRequest } from 'iab-openrtb/v26';
import { describe, expect, it } from 'vitest';
import { createPrivacy } from '../src/eligibility/privacy.js';
import { startBidder } from './helpers/bidder.js';

/**
 * GPP US sections beyond the opt-outs (review of privacy.ts): the children's consents were read on
 * their first two entries only, as usnat v1 lays them out (usnat v2's 16-17, Connecticut's 13-16
 * targeted advertising and Delaware's and New Jersey's extra entries were not read, and
 * Connecticut's under-13 "consent" 2 passed); the sensitive-data notices and consents were not read
 * at all, though the docs said Prebid's default reading applied.
 */

const p = createPrivacy({ vendorId: 5 });
const US_SECTIONS = [...Sections.SECTION_ID_NAME_MAP.entries()].filter(([, n]) => n.startsWith('us') && n !== 'uspv1');

/**
 * A section that allows user data: every notice given, nothing opted out, the MSPA header as the
 * decoder writes it; then `fields` over it. Sections that have SensitiveDataProcessing carry it all
 * 0 (not applicable), as does a publisher holding no sensitive data.
 */
function section(name: string, fields: Record<string, unknown> = {}): { regs: { gpp: string; gpp_sid: number[] } } {
  const m = new GppModel();
  const probe = new GppModel();
  probe.setFieldValue(name, 'SaleOptOut', 2);
  const defaults = probe.toObject()[name] as Record<string, unknown>;
  for (const field of Object.keys(defaults)) {
    if (/Notice$/.test(field)) m.setFieldValue(name, field, 1);
    else if (/OptOut$/.test(field)) m.setFieldValue(name, field, 2);
  }
  for (const [k, v] of Object.entries(fields)) m.setFieldValue(name, k, v);
  return { regs: { gpp: m.encode(), gpp_sid: m.getSectionIds() } };
}
const check = (regs: { regs: unknown }) => p.check({ id: 'r', imp: [{ id: '1' }], user: { buyeruid: 'u1' }, ...regs } as unknown as BidRequest);

describe('GPP: a known child, in every US section', () => {
  it('each section as built allows user data (the checks below are not vacuous)', () => {
    for (const [, name] of US_SECTIONS) expect(check(section(name)), name).toBe('');
  });

  it('any entry of KnownChildSensitiveDataConsents other than 0, whatever its position or value, allows no user data', () => {
    let cases = 0;
    for (const [, name] of US_SECTIONS) {
      const probe = new GppModel();
      probe.setFieldValue(name, 'SaleOptOut', 2);
      const kids = (probe.toObject()[name] as Record<string, unknown>).KnownChildSensitiveDataConsents;
      if (kids === undefined) continue;
      const n = Array.isArray(kids) ? kids.length : 1;
      for (let i = 0; i < n; i++) {
        for (const v of [1, 2]) {
          const value = Array.isArray(kids) ? kids.map((_, j) => (j === i ? v : 0)) : v;
          expect(check(section(name, { KnownChildSensitiveDataConsents: value })), `${name} ${JSON.stringify(value)}`).toBe('gpp-opt-out');
          cases++;
        }
      }
    }
    // usnat v2, usct, usfl, usor, usde, usnj among them: more than the two entries once read.
    expect(cases).toBeGreaterThan(60);
  });

  it("the review's strings: usnat v2 16-17 refused, Connecticut 13-16 and under 13, Florida, Oregon, Delaware, New Jersey", () => {
    const strings: Array<[string, number]> = [
      ['DBABLA~CVQqAAAAAARA.QA', 7], ['DBABVg~BFoAAAkA.QA', 12], ['DBABVg~BFoAAAUA.QA', 12], ['DBABVg~BFoAAIEA.QA', 12],
      ['DBABAw~BFoAAARA', 13], ['DBABIw~BFoAAAARAA.QA', 15], ['DBABUw~BFoAAAFRAA.QA', 17], ['DBABAYA~BFoAAABUQA.QA', 21],
    ];
    for (const [gpp, sid] of strings) expect(check({ regs: { gpp, gpp_sid: [sid] } }), gpp).toBe('gpp-opt-out');
    expect(check({ regs: { gpp: 'DBABLA~CVQqAAAAAABA.QA', gpp_sid: [7] } })).toBe('');
  });
});

describe("GPP: sensitive data, as Prebid's isTransmitUfpdConsentDenied reads it", () => {
  const sdp = (at: Record<number, number>, len = 16) => Array.from({ length: len }, (_, i) => at[i + 1] ?? 0);

  it('a sensitive-data notice not given allows no user data', () => {
    expect(check(section('usnat', { SensitiveDataLimitUseNotice: 2 }))).toBe('gpp-opt-out');
    expect(check(section('usnat', { SensitiveDataProcessingOptOutNotice: 2 }))).toBe('gpp-opt-out');
    expect(check(section('usca', { SensitiveDataLimitUseNotice: 2 }))).toBe('gpp-opt-out');
    expect(check(section('usut', { SensitiveDataProcessingOptOutNotice: 2 }))).toBe('gpp-opt-out');
    expect(check(section('usia', { SensitiveDataOptOutNotice: 2 }))).toBe('gpp-opt-out');
    expect(check({ regs: { gpp: 'DBABLA~CVSqAAAAAABA.QA', gpp_sid: [7] } })).toBe('gpp-opt-out');
    expect(check({ regs: { gpp: 'DBABLA~CVYqAAAAAABA.QA', gpp_sid: [7] } })).toBe('gpp-opt-out');
  });

  it('usnat: a refused category allows no user data, but precise geolocation (read for geo only); a consent given is fine', () => {
    for (const c of [1, 2, 3, 4, 5, 11, 13, 14, 15, 16]) expect(check(section('usnat', { SensitiveDataProcessing: sdp({ [c]: 1 }) })), `refused ${c}`).toBe('gpp-opt-out');
    expect(check(section('usnat', { SensitiveDataProcessing: sdp({ 8: 1 }) }))).toBe('');
    for (const c of [1, 2, 3, 4, 5, 8, 11]) expect(check(section('usnat', { SensitiveDataProcessing: sdp({ [c]: 2 }) })), `consented ${c}`).toBe('');
    expect(check({ regs: { gpp: 'DBABLA~CVQqVVVVAABA.QA', gpp_sid: [7] } })).toBe('gpp-opt-out');
  });

  it('usnat: genetic, biometric, government id, financial or communications data (not union membership, 11) in scope, consent or not, allows no user data', () => {
    for (const c of [6, 7, 9, 10, 12]) {
      for (const v of [1, 2]) expect(check(section('usnat', { SensitiveDataProcessing: sdp({ [c]: v }) })), `${c}=${v}`).toBe('gpp-opt-out');
    }
  });

  it('usnat: a consent claimed where the sensitive-data notice was not applicable is not trusted', () => {
    expect(check(section('usnat', { SensitiveDataProcessing: sdp({ 1: 2 }), SensitiveDataLimitUseNotice: 0 }))).toBe('gpp-opt-out');
    expect(check(section('usnat', { SensitiveDataProcessing: sdp({ 8: 2 }), SensitiveDataLimitUseNotice: 0 }))).toBe('');
  });

  it("California's categories are read in usnat's places (Prebid's normalisation)", () => {
    // California 1 (government id) is usnat 9: never; 8 (health) is usnat 3: consent needed.
    expect(check(section('usca', { SensitiveDataProcessing: sdp({ 1: 2 }, 9) }))).toBe('gpp-opt-out');
    expect(check(section('usca', { SensitiveDataProcessing: sdp({ 8: 2 }, 9) }))).toBe('');
    expect(check(section('usca', { SensitiveDataProcessing: sdp({ 8: 1 }, 9) }))).toBe('gpp-opt-out');
    // California 3 (precise geolocation) is usnat 8.
    expect(check(section('usca', { SensitiveDataProcessing: sdp({ 3: 1 }, 9) }))).toBe('');
  });

  it('a state Prebid has no normalisation for (Florida on): any sensitive-data signal allows no user data', () => {
    for (const v of [1, 2]) expect(check(section('usfl', { SensitiveDataProcessing: sdp({ 1: v }, 8) })), String(v)).toBe('gpp-opt-out');
    expect(check(section('usnj', { SensitiveDataProcessing: sdp({ 10: 2 }, 10) }))).toBe('gpp-opt-out');
  });
});

describe('as answered', () => {
  it("a known child in Connecticut's section puts no user key in the notices", async () => {
    const t = await startBidder();
    try {
      const keyed = async (regs: Record<string, unknown>) => {
        const req = { id: `ct-${JSON.stringify(regs)}`, tmax: 3000, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'], page: 'https://news.example/' }, device: { ip: '203.0.113.77', geo: { country: 'USA', region: 'CT' } }, user: { buyeruid: 'buyer-ct' }, regs };
        const r = await t.bid(req);
        expect(r.status).toBe(200);
        const bids = ((await r.json()) as any).seatbid.flatMap((s: any) => s.bid);
        expect(bids.length).toBeGreaterThan(0);
        return bids.some((b: any) => `${b.nurl}${b.burl}`.includes('&uk='));
      };
      expect(await keyed(section('usct').regs)).toBe(true);
      expect(await keyed({ gpp: 'DBABVg~BFoAAIEA.QA', gpp_sid: [12] })).toBe(false);
    } finally {
      await t.close();
    }
  });
});
