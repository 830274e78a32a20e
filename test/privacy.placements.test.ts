import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BidRequest } from 'iab-openrtb/v26';
import { describe, expect, it } from 'vitest';
import { createPrivacy } from '../src/eligibility/privacy.js';
import { startBidder } from './helpers/bidder.js';
import { tcString } from './helpers/tcf.js';

/**
 * A privacy signal carried in both placements (OpenRTB 2.6 and 2.5's `ext`) counts wherever it
 * says no: regs.us_privacy 1NNN hid regs.ext.us_privacy 1YYN, and the 2.6 gpp / gpp_sid hid the
 * regs.ext ones, so the user's key, segments and profile were used (review "privacy").
 */


/** usnat (SID 7), notices given: nothing opted out, and sale and targeted advertising opted out. */
const GPP_ALLOWS = 'DBABLA~CVVqAAAAAABA.QA';
const GPP_OPTS_OUT = 'DBABLA~CVVZAAAAAABA.QA';
const CONSENT_OK = tcString({ consents: [1, 3, 4, 10] });
const CONSENT_NONE = tcString({ consents: [], vendorConsent: false });

const user = { id: 'user-place-1', buyeruid: 'buyer-place-1', data: [{ id: 'dp', segment: [{ id: 'auto-intender' }] }] };
const base = {
  imp: [{ id: '1', banner: { w: 300, h: 250 } }],
  site: { id: 's-news', domain: 'news.example', cat: ['IAB12'], page: 'https://news.example/a', publisher: { id: 'pub-1' } },
  device: { ip: '203.0.113.77', os: 'iOS', devicetype: 4, geo: { country: 'USA', region: 'CA' } },
  user,
  tmax: 3000,
};

/** [name, request fields, what `decide` answers]. */
const CASES: Array<[string, Record<string, unknown>, string]> = [
  ['control: nothing set', {}, ''],
  ['regs.us_privacy 1NNN + regs.ext.us_privacy 1YYN', { regs: { us_privacy: '1NNN', ext: { us_privacy: '1YYN' } } }, 'us-privacy-opt-out'],
  ['regs.us_privacy 1YYN + regs.ext.us_privacy 1NNN', { regs: { us_privacy: '1YYN', ext: { us_privacy: '1NNN' } } }, 'us-privacy-opt-out'],
  ['regs.us_privacy 1yyn (lower case)', { regs: { us_privacy: '1yyn' } }, 'us-privacy-opt-out'],
  ['regs.ext.us_privacy 1-y- (lower case)', { regs: { ext: { us_privacy: '1-y-' } } }, 'us-privacy-opt-out'],
  ['regs.us_privacy 1ynn (lower case, no opt-out)', { regs: { us_privacy: '1ynn' } }, ''],
  ['gpp allows (sid [7]) in both placements', { regs: { gpp: GPP_ALLOWS, gpp_sid: [7], ext: { gpp: GPP_ALLOWS, gpp_sid: [7] } } }, ''],
  ['regs.gpp allows sid [7] + regs.ext.gpp opts out sid [7]', { regs: { gpp: GPP_ALLOWS, gpp_sid: [7], ext: { gpp: GPP_OPTS_OUT, gpp_sid: [7] } } }, 'gpp-opt-out'],
  ['regs.gpp opts out sid [7] + regs.ext.gpp allows sid [7]', { regs: { gpp: GPP_OPTS_OUT, gpp_sid: [7], ext: { gpp: GPP_ALLOWS, gpp_sid: [7] } } }, 'gpp-opt-out'],
  ['regs.gpp opts out, regs.gpp_sid [] + regs.ext.gpp_sid [7]', { regs: { gpp: GPP_OPTS_OUT, gpp_sid: [], ext: { gpp_sid: [7] } } }, 'gpp-opt-out'],
  ['regs.gpp opts out, regs.gpp_sid [] alone (names no section)', { regs: { gpp: GPP_OPTS_OUT, gpp_sid: [] } }, ''],
  // A gpp_sid beside no string, and not a list of integers, does not override the readable one (test privacy.gpp-unreadable).
  ['regs.gpp allows sid [7] + regs.ext.gpp_sid "7"', { regs: { gpp: GPP_ALLOWS, gpp_sid: [7], ext: { gpp_sid: '7' } } }, ''],
  ['gdpr 1, user.consent consents + user.ext.consent refuses', { regs: { gdpr: 1 }, user: { ...user, consent: CONSENT_OK, ext: { consent: CONSENT_NONE } } }, 'gdpr-no-consent'],
  ['gdpr 1, user.consent refuses + user.ext.consent consents', { regs: { gdpr: 1 }, user: { ...user, consent: CONSENT_NONE, ext: { consent: CONSENT_OK } } }, 'gdpr-no-consent'],
  ['gdpr 1, the same consent in both placements', { regs: { gdpr: 1 }, user: { ...user, consent: CONSENT_OK, ext: { consent: CONSENT_OK } } }, ''],
  ['gdpr 1, purposes 1, 3, 4 in one placement, with 10 in the other', { regs: { gdpr: 1 }, user: { ...user, consent: CONSENT_OK, ext: { consent: tcString({ consents: [1, 3, 4] }) } } }, 'bid-only'],
  // PBS-Java's default (purpose-one-treatment-interpretation: ignore) reads purpose 1's bit as it is.
  ['gdpr 1, purposeOneTreatment with purpose 1 consented', { regs: { gdpr: 1 }, user: { ...user, consent: tcString({ consents: [1, 3, 4, 10], purposeOneTreatment: true }) } }, ''],
  ['gdpr 1, purposeOneTreatment without purpose 1', { regs: { gdpr: 1 }, user: { ...user, consent: tcString({ consents: [3, 4, 10], purposeOneTreatment: true }) } }, 'gdpr-no-consent'],
  // Purposes 2 and 7 are not read: such a request is still bid on, contextually (docs/privacy.md).
  ['gdpr 1, no purpose, no legitimate interest, our vendor not listed', { regs: { gdpr: 1 }, user: { ...user, consent: CONSENT_NONE } }, 'gdpr-no-consent'],
];

describe('privacy signals in both placements', () => {
  const p = createPrivacy({ vendorId: 5 });
  for (const [name, over, want] of CASES) {
    it(`${name}: ${want || 'user data'}`, () => {
      expect(p.decide({ ...base, id: 'r', ...over } as unknown as BidRequest)).toBe(want);
    });
  }

  it('as answered by the bidder: no user key in the notices, and a contextual record in the event log, wherever either placement says no', async () => {
    const t = await startBidder({ tcfVendorId: 5 });
    try {
      const keyed = new Map<string, boolean>();
      for (const [i, [name, over]] of CASES.entries()) {
        const r = await t.bid({ ...base, id: `place-${i}`, ...over });
        expect(r.status, name).toBe(200);
        const bids = ((await r.json()) as any).seatbid.flatMap((s: any) => s.bid);
        // Every case is still bid on (contextually where user data may not be used).
        expect(bids.length, name).toBeGreaterThan(0);
        keyed.set(`place-${i}`, bids.some((b: any) => `${b.nurl}${b.burl}`.includes('&uk=')));
      }
      await t.bidder.close();
      const dir = join(t.dir, 'events');
      const records = readdirSync(dir)
        .flatMap((f) => readFileSync(join(dir, f), 'utf8').trim().split('\n'))
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .filter((r) => r.type === 'bid');
      for (const [i, [name, , want]] of CASES.entries()) {
        const rec = records.filter((r) => r.ctx.requestId === `place-${i}`);
        expect(rec.length, name).toBeGreaterThan(0);
        const used = want === '' || want === 'bid-only';
        expect(keyed.get(`place-${i}`), name).toBe(used);
        for (const r of rec) {
          expect(r.ctx.userDataAllowed, name).toBe(used);
          // Kept for training only where nothing withholds it.
          expect(r.ctx.userKey !== '', name).toBe(want === '');
          expect(r.ctx.segments.length > 0, name).toBe(want === '');
        }
      }
    } finally {
      await t.close();
    }
  });
});
