import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { GVL } from '@iabtechlabtcf/core';
import { GppModel } from '@iabgpp/cmpapi';
import type { BidRequest } from 'iab-openrtb/v26';
import { describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { buildCatalog } from '../src/eligibility/catalog.js';
import { createEligibility } from '../src/eligibility/eligibility.js';
import { createPrivacy } from '../src/eligibility/privacy.js';
import { createFeatureBuilder, SPARSE_FIELDS, USER_DENSE_FEATURES, USER_SPARSE_FIELDS } from '../src/features/features.js';
import type { ImpContext, UserProfile } from '../src/types.js';
import { startBidder } from './helpers/bidder.js';
import { prepareCreatives } from '../src/features/rows.js';
import { tcString, RestrictionType } from './helpers/tcf.js';

/**
 * Issue 6 §6: COPPA and GDPR-without-consent requests use no user-level data, checked where it
 * matters, in the feature rows the model scores; a TCF v2 consent to purposes 1, 3 and 4 allows
 * it; event-log records are pseudonymous (no raw user id, device id or IP).
 */


const CONSENT_OK = tcString({ consents: [1, 3, 4] });
const CONSENT_NO_PROFILING = tcString({ consents: [1] });

const richUser = {
  id: 'user-rich-7741',
  buyeruid: 'buyer-7741',
  data: [{ id: 'dp', segment: [{ id: 'auto-intender' }, { id: 'runner' }, { id: 'traveller' }, { id: 'finance' }] }],
};
const base = {
  id: 'priv-1',
  imp: [{ id: '1', banner: { w: 300, h: 250 } }],
  site: { id: 's-news', domain: 'news.example', cat: ['IAB12'], page: 'https://news.example/a', publisher: { id: 'pub-1' } },
  device: { ip: '203.0.113.77', ifa: 'ifa-6b1d-44e2', os: 'iOS', devicetype: 4, geo: { country: 'USA', region: 'CA' } },
  user: richUser,
};
const profile: UserProfile = {
  seenCategories: ['IAB18-3', 'IAB13-7', 'IAB20', 'IAB18'],
  clickedCategories: ['IAB18-3', 'IAB13'],
  campaignImpressions: { 'acme-shoes': 4, 'volt-bank': 2 },
};

describe('privacy through the features', () => {
  const policies = loadPolicies('policies');
  const features = createFeatureBuilder();
  const prepared = prepareCreatives(policies.campaigns, features);
  const eligibility = createEligibility({
    catalog: buildCatalog(policies.campaigns),
    ratesPerUsd: policies.ratesPerUsd,
    privacy: createPrivacy({ vendorId: 5 }),
    clock: () => Date.parse('2026-06-01T12:00:00Z'),
    userKey: (req) => (req.user?.id ? `key-of-${req.user.id}` : ''),
    isPaused: () => false,
    frequency: () => 0,
  });
  const { sparseFields: F, denseDim: D } = features.spec;
  const userSparse = USER_SPARSE_FIELDS.map((f) => SPARSE_FIELDS.indexOf(f));
  const userDense = Array.from({ length: USER_DENSE_FEATURES.length }, (_, k) => features.spec.denseLayout.user + k);

  function ctxOf(req: unknown): ImpContext {
    const plan = eligibility.plan(req as BidRequest, 'default', 'USD');
    return plan.imps[0].ctx;
  }

  /** The row the model would score for the first creative, given the profile even where the pipeline would withhold it. */
  function row(ctx: ImpContext, p: UserProfile | undefined): { sparse: number[]; dense: number[] } {
    const { sparse, dense } = features.allocate(1);
    features.writeRow(ctx, prepared.get('acme-300x250')!, p, sparse, dense, 0);
    return { sparse: [...sparse.subarray(0, F)], dense: [...dense.subarray(0, D)] };
  }

  const absent = row(ctxOf({ ...base, user: undefined }), undefined);
  const allowed = row(ctxOf(base), profile);

  it('a request with consent and a rich profile does fill the user fields (the check below is not vacuous)', () => {
    expect(userSparse.some((i) => allowed.sparse[i] !== 0)).toBe(true);
    expect(userDense.some((i) => allowed.dense[i] !== 0)).toBe(true);
    expect(allowed).not.toEqual(absent);
  });

  const blocked: Array<[string, Record<string, unknown>]> = [
    ['COPPA', { ...base, regs: { coppa: 1 } }],
    ['GDPR without a consent string', { ...base, regs: { gdpr: 1 } }],
    ['GDPR with an undecodable consent string', { ...base, regs: { gdpr: 1 }, user: { ...richUser, consent: 'not-a-tc-string' } }],
    ['GDPR with consent to purpose 1 only', { ...base, regs: { gdpr: 1 }, user: { ...richUser, consent: CONSENT_NO_PROFILING } }],
    ['GDPR (2.5 placement, regs.ext) without consent', { ...base, regs: { ext: { gdpr: 1 } } }],
    ['COPPA even with a valid GDPR consent', { ...base, regs: { coppa: 1, gdpr: 1 }, user: { ...richUser, consent: CONSENT_OK } }],
    ['US privacy opt-out of sale', { ...base, regs: { us_privacy: '1YYN' } }],
    ['Global Privacy Control as Prebid sets it (regs.ext.gpc "1")', { ...base, regs: { ext: { gpc: '1' } } }],
  ];
  for (const [name, req] of blocked) {
    it(`${name}: no user key, no segments, and a feature row equal to that of a request without any user`, () => {
      const ctx = ctxOf(req);
      expect(ctx.userDataAllowed).toBe(false);
      expect(ctx.userKey).toBe('');
      expect(ctx.segments).toEqual([]);
      // Even handed the profile, the builder writes the 'absent' encoding for every user field.
      const r = row(ctx, profile);
      for (const i of userSparse) expect(r.sparse[i], SPARSE_FIELDS[i]).toBe(0);
      for (const i of userDense) expect(r.dense[i]).toBe(0);
      expect(r).toEqual(absent);
    });
  }

  it('GDPR with a TCF v2 consent to purposes 1, 3 and 4 allows user data', () => {
    const ctx = ctxOf({ ...base, regs: { gdpr: 1 }, user: { ...richUser, consent: CONSENT_OK } });
    expect(ctx.userDataAllowed).toBe(true);
    expect(ctx.userKey).toBe('key-of-user-rich-7741');
    expect(ctx.segments).toContain('auto-intender');
    expect(row(ctx, profile)).toEqual(allowed);
  });

  it('the 2.5 placement of consent (user.ext.consent) counts as well', () => {
    const ctx = ctxOf({ ...base, regs: { ext: { gdpr: 1 } }, user: { ...richUser, ext: { consent: CONSENT_OK } } });
    expect(ctx.userDataAllowed).toBe(true);
  });
});

async function bidsIn(r: Response): Promise<number> {
  // A corpus request the bidder refuses (400) or passes on (204) writes no record.
  if (r.status !== 200) return 0;
  return ((await r.json()) as { seatbid: Array<{ bid: unknown[] }> }).seatbid.reduce((n, s) => n + s.bid.length, 0);
}

describe('event log is pseudonymous', () => {
  it('records of bids for identified users carry a keyed hash, never a raw user id, device id or IP', async () => {
    const t = await startBidder();
    const raw: string[] = [];
    const variants: Array<Record<string, unknown> | undefined> = [undefined, { coppa: 1 }, { gdpr: 1 }, { gdpr: 1 }];
    let bids = 0;
    try {
      for (let i = 0; i < 40; i++) {
        const user = { id: `uid-${i}-c0ffee`, buyeruid: `buid-${i}-beef`, consent: i % 4 === 3 ? CONSENT_OK : undefined };
        const device = { ...base.device, ip: `198.51.100.${i + 10}`, ipv6: `2001:db8::${(i + 4096).toString(16)}`, ifa: `ifa-${i}-5a5a5a` };
        raw.push(user.id, user.buyeruid, device.ip, device.ipv6, device.ifa);
        bids += await bidsIn(await t.bid({ ...base, id: `ev-${i}`, user: { ...richUser, ...user }, device, regs: variants[i % 4] }));
      }
      // Corpus requests with their own ids and addresses, too.
      for (const line of readFileSync('test/fixtures/corpus/openrtb-requests.iab-spec.ndjson', 'utf8').trim().split('\n')) {
        const req = JSON.parse(line) as { user?: { id?: string; buyeruid?: string }; device?: { ip?: string; ifa?: string } };
        for (const v of [req.user?.id, req.user?.buyeruid, req.device?.ip, req.device?.ifa]) if (typeof v === 'string' && v.length >= 6) raw.push(v);
        bids += await bidsIn(await t.post('/openrtb2/bid', line));
      }
      await t.bidder.close();
      const dir = join(t.dir, 'events');
      const text = readdirSync(dir)
        .map((f) => readFileSync(join(dir, f), 'utf8'))
        .join('');
      const records = text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; ctx?: ImpContext; profile?: unknown });
      const bidRecords = records.filter((r) => r.type === 'bid');
      expect(bids).toBeGreaterThan(0);
      expect(bidRecords.length).toBe(bids);
      for (const v of raw) expect(text.includes(v), `raw value ${v} in the event log`).toBe(false);
      // Users whose data may be used are still joinable for training, by their keyed hash.
      const keyed = bidRecords.filter((r) => r.ctx!.userDataAllowed && r.ctx!.userKey !== '');
      expect(keyed.length).toBeGreaterThan(0);
      for (const r of keyed) expect(r.ctx!.userKey).toMatch(/^[A-Za-z0-9_-]{16}$/);
      for (const r of bidRecords.filter((b) => !b.ctx!.userDataAllowed)) {
        expect(r.ctx!.userKey).toBe('');
        expect(r.ctx!.segments).toEqual([]);
        expect(r.profile).toBeUndefined();
      }
    } finally {
      rmSync(t.dir, { recursive: true, force: true });
    }
  });
});

describe('Global Privacy Control', () => {
  const p = createPrivacy({ vendorId: 5 });
  const withRegs = (regs: object) => ({ ...base, regs }) as unknown as BidRequest;

  it('regs.ext.gpc (Prebid) or regs.gpc, "1" or 1, is an opt-out of sale and sharing; 0 or absent is none', () => {
    for (const regs of [{ ext: { gpc: '1' } }, { ext: { gpc: 1 } }, { gpc: 1 }, { gpc: '1' }]) expect(p.check(withRegs(regs)), JSON.stringify(regs)).toBe('gpc-opt-out');
    for (const regs of [{ ext: { gpc: '0' } }, { gpc: 0 }, {}]) expect(p.check(withRegs(regs)), JSON.stringify(regs)).toBe('');
  });

  it('as answered: no user key in the notices and no bid from a campaign that bids only with consent, as under a US privacy opt-out', async () => {
    const t = await startBidder();
    try {
      const answer = async (regs: object) => {
        const r = await t.bid({ ...base, id: `gpc-${JSON.stringify(regs)}`, tmax: 3000, regs });
        if (r.status !== 200) return { status: r.status, cids: [], keyed: false };
        const bids = ((await r.json()) as any).seatbid.flatMap((s: any) => s.bid);
        return { status: 200, cids: bids.map((b: any) => b.cid), keyed: bids.some((b: any) => `${b.nurl}${b.burl}`.includes('&uk=')) };
      };
      // The check is not vacuous: with nothing set the user key is in the notices.
      expect((await answer({})).keyed).toBe(true);
      const optedOut = await answer({ us_privacy: '1YYN' });
      for (const regs of [{ ext: { gpc: '1' } }, { gpc: 1 }]) {
        const a = await answer(regs);
        expect(a, JSON.stringify(regs)).toEqual(optedOut);
        expect(a.keyed).toBe(false);
        for (const cid of ['volt-bank', 'auto-intenders']) expect(a.cids).not.toContain(cid);
      }
    } finally {
      await t.close();
    }
  });
});

describe('consent: TCF v2 vendor consent, publisher restrictions and GPP', () => {
  const p = createPrivacy({ vendorId: 5 });
  const gdpr = (consent: string) => ({ ...base, regs: { gdpr: 1 }, user: { ...richUser, consent } }) as unknown as BidRequest;
  const gpp = (fields: Array<[string, string, unknown]>) => {
    const m = new GppModel();
    for (const [section, field, value] of fields) m.setFieldValue(section, field, value);
    return m.encode();
  };
  const withGpp = (s: string, sid?: unknown) => ({ ...base, regs: { gpp: s, ...(sid === undefined ? {} : { gpp_sid: sid }) } }) as unknown as BidRequest;

  it('consent: purposes 1, 3 and 4 without consent to our GVL vendor id allow no user data (review item 5)', () => {
    expect(p.check(gdpr(CONSENT_OK))).toBe('');
    expect(p.check(gdpr(tcString({ consents: [1, 3, 4], vendorConsent: false })))).toBe('gdpr-no-consent');
    // Another vendor id than the one consented to, or none configured: no user data either.
    expect(createPrivacy({ vendorId: 6 }).check(gdpr(CONSENT_OK))).toBe('gdpr-no-consent');
    expect(createPrivacy().check(gdpr(CONSENT_OK))).toBe('gdpr-no-consent');
  });

  it('consent: a publisher restriction against our vendor on a needed purpose allows no user data', () => {
    expect(p.check(gdpr(tcString({ consents: [1, 3, 4], restrict: [3, RestrictionType.NOT_ALLOWED] })))).toBe('gdpr-no-consent');
    expect(p.check(gdpr(tcString({ consents: [1, 3, 4], restrict: [9, RestrictionType.NOT_ALLOWED] })))).toBe('');
  });

  it('consent: GPP US opt-outs, an undecodable GPP string and an applicable section it does not carry allow no user data', () => {
    expect(p.check(withGpp(gpp([['usnat', 'SaleOptOut', 1], ['usnat', 'SaleOptOutNotice', 1]]), [7]))).toBe('gpp-opt-out');
    expect(p.check(withGpp(gpp([['usca', 'SharingOptOut', 1]])))).toBe('gpp-opt-out');
    expect(p.check(withGpp(gpp([['usca', 'SaleOptOut', 2], ['usca', 'SaleOptOutNotice', 1], ['usca', 'SharingOptOut', 2], ['usca', 'SharingOptOutNotice', 1]]), [8]))).toBe('');
    expect(p.check(withGpp(gpp([['uspv1', 'OptOutSale', 'Y'], ['uspv1', 'Notice', 'Y']]), [6]))).toBe('gpp-opt-out');
    expect(p.check(withGpp('DBABM~not-a-section'))).toBe('gpp-not-understood');
    expect(p.check(withGpp('garbage'))).toBe('gpp-not-understood');
    expect(p.check(withGpp(gpp([['usca', 'SaleOptOut', 2]]), [7]))).toBe('gpp-not-understood');
    // A gpp_sid not a list of integers is read as absent: every section the string carries applies.
    expect(p.check(withGpp(gpp([['usca', 'SaleOptOut', 2]]), 'seven'))).toBe('gpp-opt-out');
  });

  it('consent: the MSPA signals beyond the opt-outs, as Prebid reads them by default', () => {
    // Notices given, nothing opted out: user data may be used.
    const given: Array<[string, string, unknown]> = [['usnat', 'SaleOptOutNotice', 1], ['usnat', 'SharingOptOutNotice', 1], ['usnat', 'TargetedAdvertisingOptOutNotice', 1], ['usnat', 'SharingNotice', 1], ['usnat', 'SaleOptOut', 2], ['usnat', 'SharingOptOut', 2], ['usnat', 'TargetedAdvertisingOptOut', 2]];
    expect(p.check(withGpp(gpp(given), [7]))).toBe('');
    const denied: Array<[string, unknown]> = [
      ['MspaServiceProviderMode', 1], ['Gpc', true], ['PersonalDataConsents', 2],
      // A known child: 13 and over without consent, or under 13 at all.
      ['KnownChildSensitiveDataConsents', [1, 0, 0]], ['KnownChildSensitiveDataConsents', [0, 2, 0]],
      // A notice not given, or "did not opt out" of something no notice applied to.
      ['SaleOptOutNotice', 2], ['TargetedAdvertisingOptOutNotice', 0], ['SharingNotice', 2],
    ];
    for (const [field, value] of denied) expect(p.check(withGpp(gpp([...given, ['usnat', field, value]]), [7])), `${field} ${JSON.stringify(value)}`).toBe('gpp-opt-out');
    // A state section's single child flag.
    const va: Array<[string, string, unknown]> = [['usva', 'SaleOptOutNotice', 1], ['usva', 'TargetedAdvertisingOptOutNotice', 1], ['usva', 'SharingNotice', 1], ['usva', 'SaleOptOut', 2], ['usva', 'TargetedAdvertisingOptOut', 2]];
    expect(p.check(withGpp(gpp(va), [9]))).toBe('');
    expect(p.check(withGpp(gpp([...va, ['usva', 'KnownChildSensitiveDataConsents', 1]]), [9]))).toBe('gpp-opt-out');
  });

  it('GDPR: a consent string without the gdpr flag applies it; an empty consent field does not hide the other; the consent may travel in GPP only', () => {
    const noFlag = (consent: string) => ({ ...base, user: { ...richUser, consent } }) as unknown as BidRequest;
    expect(p.check(noFlag(tcString({ consents: [1, 3, 4], vendorConsent: false })))).toBe('gdpr-no-consent');
    expect(p.check(noFlag(CONSENT_OK))).toBe('');
    // gdpr 0 says it does not apply, consent string or not.
    expect(p.check({ ...base, regs: { gdpr: 0 }, user: { ...richUser, consent: tcString({ consents: [1], vendorConsent: false }) } } as unknown as BidRequest)).toBe('');
    expect(p.check({ ...base, regs: { gdpr: 1 }, user: { ...richUser, consent: '', ext: { consent: CONSENT_OK } } } as unknown as BidRequest)).toBe('');
    const inGpp = new GppModel();
    inGpp.setFieldValue('tcfeuv2', 'Version', 2);
    inGpp.decodeSection('tcfeuv2', CONSENT_OK);
    const withTcf = { ...base, regs: { gdpr: 1, gpp: inGpp.encode(), gpp_sid: [2] }, user: { ...richUser } } as unknown as BidRequest;
    delete (withTcf.user as { consent?: string }).consent;
    expect(p.check(withTcf)).toBe('');
  });

  it('COPPA in regs.ext (2.5) and limited ad tracking allow no user data', () => {
    expect(p.check({ ...base, regs: { ext: { coppa: 1 } } } as unknown as BidRequest)).toBe('coppa');
    expect(p.check({ ...base, device: { ...base.device, lmt: 1 } } as unknown as BidRequest)).toBe('limited-tracking');
    expect(p.check({ ...base, device: { ...base.device, ext: { atts: 2 } } } as unknown as BidRequest)).toBe('limited-tracking');
    expect(p.check({ ...base, device: { ...base.device, lmt: 0, ext: { atts: 3 } } } as unknown as BidRequest)).toBe('');
  });
});

// Flags in other forms than 0/1 were read as absent: device.lmt "1" or regs.ext.coppa "1" used the
// user's id (review of the bidder's input handling). The schema admits a number, a boolean, "0" or
// "1"; only 0, false and "0" allow user data.
describe('privacy flags in the forms exchanges write them', () => {
  const p = createPrivacy({ vendorId: 5 });
  const check = (over: Record<string, unknown>) => p.check({ ...base, ...over } as unknown as BidRequest);
  const SET = ['1', true, 1, 2, 0.5];
  const UNSET = [0, false, '0', null];
  const FLAGS: Array<[string, (v: unknown) => Record<string, unknown>, string]> = [
    ['regs.coppa', (v) => ({ regs: { coppa: v } }), 'coppa'],
    ['regs.ext.coppa', (v) => ({ regs: { ext: { coppa: v } } }), 'coppa'],
    ['device.lmt', (v) => ({ device: { ...base.device, lmt: v } }), 'limited-tracking'],
    ['regs.gpc', (v) => ({ regs: { gpc: v } }), 'gpc-opt-out'],
    ['regs.ext.gpc', (v) => ({ regs: { ext: { gpc: v } } }), 'gpc-opt-out'],
    // Without a consent string, GDPR applying allows no user data.
    ['regs.gdpr', (v) => ({ regs: { gdpr: v } }), 'gdpr-no-consent'],
    ['regs.ext.gdpr', (v) => ({ regs: { ext: { gdpr: v } } }), 'gdpr-no-consent'],
  ];

  for (const [name, at, reason] of FLAGS) {
    it(`${name}: 1, "1", true or any number but 0 allows no user data (${reason}); 0, false, "0" or null does`, () => {
      for (const v of SET) expect(check(at(v)), JSON.stringify(v)).toBe(reason);
      for (const v of UNSET) expect(check(at(v)), JSON.stringify(v)).toBe('');
    });
  }

  it('a flag set in either placement counts: 0 in the other does not hide it', () => {
    expect(check({ regs: { coppa: 0, ext: { coppa: 1 } } })).toBe('coppa');
    expect(check({ regs: { gpc: 0, ext: { gpc: '1' } } })).toBe('gpc-opt-out');
    expect(check({ regs: { gdpr: 0, ext: { gdpr: 1 } } })).toBe('gdpr-no-consent');
    // gdpr 0 where the other placement is absent: it does not apply, whatever the consent string.
    expect(check({ regs: { gdpr: 0 }, user: { ...richUser, consent: CONSENT_NO_PROFILING } })).toBe('');
  });

  it('device.ext.atts: user data with 0 (not determined) or 3 (authorized) only', () => {
    for (const atts of [1, 2, 4, -1]) expect(check({ device: { ...base.device, ext: { atts } } }), String(atts)).toBe('limited-tracking');
    for (const atts of [0, 3, null]) expect(check({ device: { ...base.device, ext: { atts } } }), String(atts)).toBe('');
  });

  it('a GPP string of another type is not understood (no user data); a section list of another type is read as absent', () => {
    // A usnat section that allows user data: notices given, nothing opted out.
    const m = new GppModel();
    for (const [f, v] of [['SaleOptOutNotice', 1], ['SharingOptOutNotice', 1], ['TargetedAdvertisingOptOutNotice', 1], ['SharingNotice', 1], ['SaleOptOut', 2], ['SharingOptOut', 2], ['TargetedAdvertisingOptOut', 2]] as const) m.setFieldValue('usnat', f, v);
    const allows = m.encode();
    expect(check({ regs: { gpp: allows, gpp_sid: [7] } })).toBe('');
    expect(check({ regs: { ext: { gpp: allows, gpp_sid: [7] } } })).toBe('');
    expect(check({ regs: { gpp: 5 } })).toBe('gpp-not-understood');
    expect(check({ regs: { ext: { gpp: [allows] } } })).toBe('gpp-not-understood');
    // Every section of the string read, as without gpp_sid: an allowing string allows (test privacy.gpp-unreadable).
    expect(check({ regs: { gpp: allows, gpp_sid: '7' } })).toBe('');
    expect(check({ regs: { ext: { gpp: allows, gpp_sid: ['7'] } } })).toBe('');
  });

  it('as answered: lmt "1", regs.ext.coppa "1" or lmt true put no user key in the notices', async () => {
    const t = await startBidder();
    try {
      const keyed = async (over: Record<string, unknown>) => {
        const r = await t.bid({ ...base, id: `flag-${JSON.stringify(over)}`, tmax: 3000, ...over });
        expect(r.status).toBe(200);
        const bids = ((await r.json()) as any).seatbid.flatMap((s: any) => s.bid);
        return bids.some((b: any) => `${b.nurl}${b.burl}`.includes('&uk='));
      };
      // Not vacuous: with the flags at 0 the user key is in the notices.
      expect(await keyed({ regs: { ext: { coppa: 0 } }, device: { ...base.device, lmt: 0 } })).toBe(true);
      for (const over of [{ device: { ...base.device, lmt: '1' } }, { regs: { ext: { coppa: '1' } } }, { device: { ...base.device, lmt: true } }]) {
        expect(await keyed(over), JSON.stringify(over)).toBe(false);
      }
    } finally {
      await t.close();
    }
  });
});
