import { GVL, PurposeRestriction, RestrictionType, TCModel, TCString } from '@iabtechlabtcf/core';

export { RestrictionType };

export interface TcOptions {
  /** Purposes consented to. */
  consents: number[];
  /** Purposes under legitimate interest. */
  li?: number[];
  /** Vendor 5's consent (default true) and legitimate interest (default false). */
  vendorConsent?: boolean;
  vendorLi?: boolean;
  /** A publisher restriction on vendor 5: purpose and type. */
  restrict?: [number, RestrictionType];
  /**
   * The basis the vendor list gives vendor 5 for purpose 10, flexible (the encoder drops a
   * restriction that asks for the basis declared); absent: legitimate interest. Purposes 1, 3, 4
   * and 9 are declared by consent, so a restriction on them is kept.
   */
  declared10?: 'consent' | 'li';
  /** Purpose 1 not disclosed (with a publisher country, which the flag goes with). */
  purposeOneTreatment?: boolean;
}

/**
 * A service-specific TCF v2 TC string for vendor 5 (CMP 10), encoded offline against a minimal
 * vendor list; it throws where the encoder dropped what was set, so no test passes on a string
 * that says less than it asked for.
 */
export function tcString(o: TcOptions): string {
  const declared = o.declared10 === 'consent' ? { purposes: [1, 3, 4, 9, 10], legIntPurposes: [2], flexiblePurposes: [10] } : { purposes: [1, 3, 4, 9], legIntPurposes: [10], flexiblePurposes: [10] };
  const purposes = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [i + 1, { id: i + 1, name: `p${i + 1}`, description: '', illustrations: [] }]));
  const gvl = new GVL({
    gvlSpecificationVersion: 3, vendorListVersion: 100, tcfPolicyVersion: 4, lastUpdated: '2026-01-01T00:00:00Z',
    purposes, specialPurposes: {}, features: {}, specialFeatures: {}, stacks: {},
    vendors: { 5: { id: 5, name: 'b', ...declared, specialPurposes: [], features: [], specialFeatures: [], cookieMaxAgeSeconds: 0, usesCookies: false, cookieRefresh: false, usesNonCookieAccess: false, deviceStorageDisclosureUrl: '', urls: [] } },
  } as unknown as ConstructorParameters<typeof GVL>[0]);
  const m = new TCModel(gvl);
  m.cmpId = 10;
  m.cmpVersion = 1;
  m.consentScreen = 1;
  m.isServiceSpecific = true;
  m.purposeConsents.set(o.consents);
  if (o.li) m.purposeLegitimateInterests.set(o.li);
  if (o.vendorConsent !== false) m.vendorConsents.set(5);
  if (o.vendorLi) m.vendorLegitimateInterests.set(5);
  if (o.restrict) m.publisherRestrictions.add(5, new PurposeRestriction(o.restrict[0], o.restrict[1]));
  if (o.purposeOneTreatment) {
    m.purposeOneTreatment = true;
    m.publisherCountryCode = 'DE';
  }
  const tc = TCString.encode(m);
  const d = TCString.decode(tc);
  if (d.publisherRestrictions.numRestrictions !== (o.restrict ? 1 : 0) || d.vendorLegitimateInterests.has(5) !== !!o.vendorLi || d.purposeOneTreatment !== !!o.purposeOneTreatment) {
    throw new Error('the encoder dropped a setting');
  }
  return tc;
}
