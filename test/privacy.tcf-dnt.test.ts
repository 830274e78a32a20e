import { TCString } from '@iabtechlabtcf/core';
import type { BidRequest } from 'iab-openrtb/v26';
import { describe, expect, it } from 'vitest';
import { createPrivacy } from '../src/eligibility/privacy.js';
import { tcString } from './helpers/tcf.js';

const p = createPrivacy({ vendorId: 5 });
const base = { id: 'r', imp: [{ id: '1', banner: { w: 300, h: 250 } }], device: { ip: '203.0.113.77', geo: { country: 'USA' } }, user: { buyeruid: 'buyer-1' } };


describe('TCF purposeOneTreatment (purpose 1 not disclosed)', () => {
  // Decided, not an oversight: PBS-Java's default (purpose-one-treatment-interpretation: ignore)
  // still requires purpose 1; PBS-Go's (purpose_one_treatment.access_allowed: true) allows it. The
  // flag leaves the vendor to judge purpose 1 by the publisher's country, which the bidder has no
  // rules for, so it takes the reading that cannot use data without a basis.
  it('purposes 3 and 4 and the vendor consented, purpose 1 not disclosed: no user data, as PBS-Java by default', () => {
    const tc = tcString({ consents: [3, 4], purposeOneTreatment: true });
    expect(TCString.decode(tc).purposeOneTreatment).toBe(true);
    expect(p.check({ ...base, regs: { gdpr: 1 }, user: { ...base.user, consent: tc } } as unknown as BidRequest)).toBe('gdpr-no-consent');
    // Not vacuous: the same consents with purpose 1 disclosed and given allow it.
    expect(p.check({ ...base, regs: { gdpr: 1 }, user: { ...base.user, consent: tcString({ consents: [1, 3, 4] }) } } as unknown as BidRequest)).toBe('');
  });
});

describe('Do Not Track (device.dnt)', () => {
  // It was not read: 43 requests of the corpus carry dnt 1 and got a user key and a profile.
  it('dnt 1 (or "1", true) is read as lmt: no user data; 0, "0", false or absent is not', () => {
    for (const dnt of [1, '1', true]) expect(p.check({ ...base, device: { ...base.device, dnt } } as unknown as BidRequest), JSON.stringify(dnt)).toBe('limited-tracking');
    for (const dnt of [0, '0', false, null]) expect(p.check({ ...base, device: { ...base.device, dnt } } as unknown as BidRequest), JSON.stringify(dnt)).toBe('');
    expect(p.check(base as unknown as BidRequest)).toBe('');
  });
});
