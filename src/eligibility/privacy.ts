import { TCString } from '@iabtechlabtcf/core';
import { GppModel, Sections } from '@iabgpp/cmpapi';
import { LRUCache } from 'lru-cache';
import type { BidRequest } from 'iab-openrtb/v26';

/** A cache bounded by the bytes of its keys (UTF-16, plus an entry's overhead), not only their count. */
const KEY_BYTES = { maxSize: 16 * 1024 * 1024, sizeCalculation: (_: unknown, key: string) => 2 * key.length + 64 };

/** Why user-level data may not be used for a request ('' = it may). */
export type PrivacyBlock = '' | 'coppa' | 'limited-tracking' | 'gdpr-no-consent' | 'us-privacy-opt-out' | 'gpc-opt-out' | 'gpp-opt-out' | 'gpp-not-understood';
/**
 * `decide`'s answer: a block, '' (user data may be used and kept), or 'bid-only': it may be used
 * for the bid, but not kept past it for training (TRAINING_PURPOSE without a basis).
 */
export type PrivacyDecision = PrivacyBlock | 'bid-only';

/**
 * TCF v2 purposes a personalised bid needs: store/access (1), personalised ads profile (3) and
 * selection (4). Under TCF 2.2 (policy version 4) none of them may rest on legitimate interest,
 * so each needs the user's consent, and the vendor's. Purpose 1's consent bit is read as it is where
 * the string says purpose 1 was not disclosed (purposeOneTreatment): PBS-Java's default
 * (purpose-one-treatment-interpretation ignore); PBS-Go's default allows purpose 1 then whatever the
 * bit says, which would need the bidder to judge the publisher's country (PublisherCC).
 */
const REQUIRED_PURPOSES = [1, 3, 4];
/**
 * TCF purpose 10, "develop and improve services": training the CTR model on the user-level fields
 * of the event log's bid records (market research, 9, is measuring audiences, not this). It may rest
 * on consent or on legitimate interest, each with our vendor's of the same kind.
 */
const TRAINING_PURPOSE = 10;
/** TCF publisher restriction types (TCF v2 "PubRestrictionEntry"). */
const NOT_ALLOWED = 0;
const REQUIRE_CONSENT = 1;
const REQUIRE_LI = 2;

export interface PrivacyOptions {
  /**
   * Our IAB Global Vendor List id. Under GDPR user data is used only with the user's consent to
   * purposes 1, 3 and 4 *and* to this vendor, with no publisher restriction against it on those
   * purposes, and kept for training only with a basis for purpose 10 as well. Absent or 0 (not
   * registered): GDPR requests never use user data.
   */
  vendorId?: number;
}

/**
 * Where a state section's SensitiveDataProcessing categories sit in usnat's 12 (1-based, as in the
 * GPP specs): Prebid.js's NORMALIZATIONS (modules/gppControl_usstates.js), which PBS-Java's state
 * readers follow. Virginia, Colorado and Connecticut list usnat's first categories in its order.
 */
const SENSITIVE_TO_USNAT: Record<string, Record<number, number[]>> = {
  usnat: {},
  usca: { 1: [9], 2: [10], 3: [8], 4: [1, 2], 5: [12], 8: [3], 9: [4] },
  usva: {},
  usco: {},
  usut: { 3: [4], 4: [5], 5: [3] },
  usct: {},
};
/** usnat's precise geolocation: Prebid reads it for the transmission of geo, not of user data. */
const SENSITIVE_GEO = 8;
/**
 * Genetic, biometric, government id, financial, communications: Prebid denies user data wherever the
 * CMP says one of them applies, consent or not. Union membership (11) only where refused, as 1 to 5.
 */
const SENSITIVE_NEVER = [6, 7, 9, 10, 12];

/** A section's SensitiveDataProcessing in usnat's order (1-based; a category the state lacks is absent). */
function sensitiveAsUsnat(name: string, sdp: unknown[]): Map<number, unknown> {
  const move = SENSITIVE_TO_USNAT[name];
  const out = new Map<number, unknown>();
  sdp.forEach((v, i) => {
    for (const to of move[i + 1] ?? [i + 1]) if (!out.has(to) || move[i + 1] !== undefined) out.set(to, v);
  });
  return out;
}

/**
 * Whether a GPP US section (national or a state's, as @iabgpp/cmpapi decodes it) denies the use of
 * user data: Prebid's default reading of the MSPA signals for the transmission of user data
 * (isTransmitUfpdConsentDenied in libraries/mspa/activityControls.js, docs.prebid.org/features/
 * mspa-usnat.html), on the fields the section has, and stricter where noted.
 */
function usSectionDenies(name: string, f: Record<string, unknown>): boolean {
  if (f.MspaServiceProviderMode === 1 || f.Gpc === 1 || f.Gpc === true) return true;
  if (f.PersonalDataConsents === 2) return true;
  // A known child, whichever age band and whatever its consent says: the sections order the bands
  // differently (usnat v2 adds 16-17 third, Connecticut puts targeted advertising at 13-16 third,
  // Delaware and New Jersey carry five) and Connecticut reads 1 as consent where usnat reads it as
  // none. Prebid's state normalisations deny any non-zero entry too; for usnat it lets a 13-16 with
  // consent (2 first) through, which this does not: the bidder keeps a profile, not one ad's use.
  const kids = f.KnownChildSensitiveDataConsents;
  if (Array.isArray(kids) ? kids.some((k) => k !== 0) : kids !== undefined && kids !== 0) return true;
  for (const scope of ['Sale', 'Sharing', 'TargetedAdvertising']) {
    const optOut = f[`${scope}OptOut`];
    const notice = f[`${scope}OptOutNotice`];
    if (optOut === 1 || notice === 2 || (optOut === 2 && notice === 0)) return true;
  }
  if (f.SharingNotice === 2 || (f.SharingOptOut === 2 && f.SharingNotice === 0)) return true;
  // Sensitive data: no notice given (Iowa calls its notice SensitiveDataOptOutNotice).
  const notices = [f.SensitiveDataProcessingOptOutNotice, f.SensitiveDataLimitUseNotice, f.SensitiveDataOptOutNotice];
  if (notices.includes(2)) return true;
  const sdp = Array.isArray(f.SensitiveDataProcessing) ? (f.SensitiveDataProcessing as unknown[]) : [];
  // States Prebid has no normalisation for (Florida on): their categories are not usnat's, so
  // any signal on one, consent given (2) or refused (1), denies.
  if (SENSITIVE_TO_USNAT[name] === undefined) return sdp.some((v) => v !== 0);
  const cat = sensitiveAsUsnat(name, sdp);
  for (const [c, v] of cat) {
    if (c === SENSITIVE_GEO) continue;
    // A category the CMP says applies that no consent can cover.
    if (SENSITIVE_NEVER.includes(c)) {
      if (v !== null && v !== undefined && v !== 0) return true;
    } else if (v === 1) return true;
    // Consent claimed where the sensitive-data notice was not applicable: not trusted. usnat v2's
    // categories 13 to 16, past Prebid's 12, are read as the others that need consent.
    if (v === 2 && notices.includes(0)) return true;
  }
  return false;
}

/**
 * Whether a privacy flag (coppa, gdpr, lmt, gpc) is set, in the forms the schema admits (a number,
 * a boolean, "0" or "1"). Only 0, false and "0" are unset: a value the bidder cannot read as 0
 * (coppa 2, lmt true from the protobuf binding) never lets user data be used. Absent (undefined,
 * null) is neither; the caller says what that means.
 */
function flagSet(v: unknown): boolean {
  return v !== undefined && v !== null && v !== 0 && v !== false && v !== '0';
}

/** Of two decisions, the one that allows less: a block (the first where both block), then 'bid-only'. */
function stricter(a: PrivacyDecision, b: PrivacyDecision): PrivacyDecision {
  if (a !== '' && a !== 'bid-only') return a;
  if (b !== '' && b !== 'bid-only') return b;
  return a === 'bid-only' ? a : b;
}

/**
 * Whether a US Privacy string opts out of sale: "1YYN", its third character, in either case (the
 * string's own spec writes it upper-case; some CMPs and exchanges send it lower-case).
 */
function uspOptOut(v: unknown): boolean {
  return typeof v === 'string' && v.length === 4 && (v[2] === 'Y' || v[2] === 'y');
}

/** A GPP string as a placement carries it, or undefined: absent, '' or not a string. */
function gppString(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Whether a field holds something other than a string that is not absent: a value that cannot be read. */
function unreadable(v: unknown): boolean {
  return v !== undefined && v !== null && typeof v !== 'string';
}

/** A `gpp_sid` in a shape or with content that does not say which sections apply. */
const UNREADABLE = 'unreadable';
type SectionIds = number[] | undefined | typeof UNREADABLE;

/**
 * A `gpp_sid` as a list of section ids: a list of integers, or written as a string ("2", "7,8") or a
 * list of strings (["2"], ["7", "8"]), as some exchanges send it; undefined where it is absent;
 * UNREADABLE for any other shape or content ("", "seven", 7 on its own, {}).
 */
function sectionIds(v: unknown): SectionIds {
  if (v === undefined || v === null) return undefined;
  const items = typeof v === 'string' ? v.split(',') : v;
  if (!Array.isArray(items)) return UNREADABLE;
  const ids = items.map((s) => (Number.isInteger(s) ? (s as number) : typeof s === 'string' && /^\s*\d+\s*$/.test(s) ? Number(s) : NaN));
  return ids.every((id) => Number.isInteger(id)) ? ids : UNREADABLE;
}

/** Whether a `gpp_sid` says something about the sections that apply: one it cannot read may name any. */
function namesSections(ids: SectionIds): boolean {
  return ids === UNREADABLE || (ids !== undefined && ids.length > 0);
}

/**
 * Decides whether a request allows user-level data (OpenRTB 2.6 §3.2.3 regs, §3.2.20 user.consent;
 * 2.5 carries them in regs.ext / user.ext). Decoded TC and GPP strings are cached: exchanges send
 * the same string for many requests, and decoding one costs tens of microseconds.
 */
export function createPrivacy(opts: PrivacyOptions = {}) {
  const vendorId = opts.vendorId ?? 0;
  // Sized by their keys' bytes too: a key is a raw string a request sent, and 10,000 of 200 KB
  // consent strings held 2 GB (input audit). 16 MB each covers 10,000 real strings of ~1 KB.
  const tcCache = new LRUCache<string, PrivacyDecision>({ max: 10_000, ...KEY_BYTES });
  const gppCache = new LRUCache<string, PrivacyDecision | 'tcf'>({ max: 10_000, ...KEY_BYTES });

  /** What a TC string allows: 'gdpr-no-consent', 'bid-only' or '' (bid and train). */
  function consentAllows(tc: string): PrivacyDecision {
    const hit = tcCache.get(tc);
    if (hit !== undefined) return hit;
    let out: PrivacyDecision = 'gdpr-no-consent';
    if (vendorId > 0) {
      try {
        const model = TCString.decode(tc);
        let bid = REQUIRED_PURPOSES.every((p) => model.purposeConsents.has(p)) && model.vendorConsents.has(vendorId);
        let trainByConsent = model.purposeConsents.has(TRAINING_PURPOSE) && model.vendorConsents.has(vendorId);
        let trainByLi = model.purposeLegitimateInterests.has(TRAINING_PURPOSE) && model.vendorLegitimateInterests.has(vendorId);
        for (const r of model.publisherRestrictions.getRestrictions(vendorId)) {
          if (REQUIRED_PURPOSES.includes(r.purposeId as number) && (r.restrictionType === NOT_ALLOWED || r.restrictionType === REQUIRE_LI)) bid = false;
          if (r.purposeId === TRAINING_PURPOSE) {
            if (r.restrictionType !== REQUIRE_CONSENT) trainByConsent = false;
            if (r.restrictionType !== REQUIRE_LI) trainByLi = false;
          }
        }
        if (bid) out = trainByConsent || trainByLi ? '' : 'bid-only';
      } catch {
        // An undecodable consent string is no consent: the safe reading under GDPR.
      }
    }
    tcCache.set(tc, out);
    return out;
  }

  /**
   * GPP (OpenRTB 2.6 regs.gpp, regs.gpp_sid), decoded with IAB Tech Lab's @iabgpp/cmpapi. US
   * sections (national and state): usSectionDenies; uspv1: its opt-out-of-sale flag; tcfeuv2: the
   * TCF check above. A string that does not decode, or an applicable section with no rule here, is
   * read as "no user data".
   */
  function gppBlock(gpp: string, sids: number[] | undefined): PrivacyDecision {
    const key = sids === undefined ? gpp : `${gpp}|${sids.join(',')}`;
    const hit = gppCache.get(key);
    if (hit !== undefined) return hit === 'tcf' ? '' : hit;
    let out: PrivacyDecision = '';
    // A 'bid-only' tcfeuv2 section still lets a later section block.
    let bidOnly = false;
    try {
      const model = new GppModel(gpp);
      const present = model.getSectionIds();
      const applicable = sids ?? present;
      const sections = model.toObject() as Record<string, Record<string, unknown>>;
      for (const id of applicable) {
        const name = present.includes(id) ? Sections.SECTION_ID_NAME_MAP.get(id) : undefined;
        if (name === undefined || sections[name] === undefined) {
          out = 'gpp-not-understood';
          break;
        }
        const f = sections[name];
        if (name === 'uspv1') {
          if (f.OptOutSale === 'Y') out = 'gpp-opt-out';
        } else if (name === 'tcfeuv2') {
          const tcf = consentAllows(model.encodeSection('tcfeuv2'));
          if (tcf === 'bid-only') bidOnly = true;
          else out = tcf;
        } else if (name.startsWith('us')) {
          if (usSectionDenies(name, f)) out = 'gpp-opt-out';
        } else out = 'gpp-not-understood';
        if (out !== '') break;
      }
      if (out === '' && bidOnly) out = 'bid-only';
    } catch {
      out = 'gpp-not-understood';
    }
    gppCache.set(key, out === '' ? 'tcf' : out);
    return out;
  }

  /**
   * What the GPP fields of both placements deny. A `gpp` that is '' carries no string, as an empty
   * consent does; one of another type cannot be read, but beside a string in the other placement it
   * does not override what that string says, and alone it counts as not understood. Each string is
   * read with its own placement's `gpp_sid`; where that names no section (absent or empty) and the
   * other placement has a `gpp_sid` but no string, with that one, as exchanges mixing 2.5 and 2.6
   * placements send them. A `gpp_sid` that cannot be read is not taken as absent (every section the
   * string carries): that allows more than the list may have meant, since a listed section the
   * string lacks (EU TCF's 2 beside a usnat-only string) is not understood. The string is then not
   * understood, or denies where it does so itself.
   */
  function gppFields(regs: (Record<string, unknown> & { ext?: Record<string, unknown> }) | undefined): PrivacyDecision {
    const gpp = gppString(regs?.gpp);
    const extGpp = gppString(regs?.ext?.gpp);
    if (gpp === undefined && extGpp === undefined) return unreadable(regs?.gpp) || unreadable(regs?.ext?.gpp) ? 'gpp-not-understood' : '';
    const sid = sectionIds(regs?.gpp_sid);
    const extSid = sectionIds(regs?.ext?.gpp_sid);
    const read = (s: string, ids: SectionIds): PrivacyDecision => (ids === UNREADABLE ? stricter(gppBlock(s, undefined), 'gpp-not-understood') : gppBlock(s, ids));
    let out: PrivacyDecision = '';
    if (gpp !== undefined) out = read(gpp, !namesSections(sid) && extGpp === undefined && namesSections(extSid) ? extSid : sid);
    if (extGpp !== undefined) out = stricter(out, read(extGpp, !namesSections(extSid) && gpp === undefined && namesSections(sid) ? sid : extSid));
    return out;
  }

  /**
   * What two TC strings (2.6 and 2.5 placements) allow, '' standing for one absent: where both are
   * there and differ, the stricter, since which one the CMP wrote last cannot be told. null: neither.
   */
  function tcfOf(a: string, b: string): PrivacyDecision | null {
    if (a === '' && b === '') return null;
    if (a === '' || a === b) return consentAllows(b);
    if (b === '') return consentAllows(a);
    return stricter(consentAllows(a), consentAllows(b));
  }

  /** The TCF string a GPP string carries in its tcfeuv2 section, or '' (cached with the GPP decodes). */
  const gppTcfCache = new LRUCache<string, string>({ max: 10_000, maxSize: KEY_BYTES.maxSize, sizeCalculation: (tc, gpp) => 2 * (gpp.length + tc.length) + 64 });
  function gppTcf(gpp: unknown): string {
    if (typeof gpp !== 'string' || gpp === '') return '';
    let tc = gppTcfCache.get(gpp);
    if (tc === undefined) {
      tc = '';
      try {
        const model = new GppModel(gpp);
        if (model.hasSection('tcfeuv2')) tc = model.encodeSection('tcfeuv2');
      } catch {
        // Not decodable: no consent found in it.
      }
      gppTcfCache.set(gpp, tc);
    }
    return tc;
  }

  const api = {
    /** Why user data may not be used for the request ('' = it may): `decide` with 'bid-only' read as ''. */
    check(req: BidRequest): PrivacyBlock {
      const d = api.decide(req);
      return d === 'bid-only' ? '' : d;
    },
    /** `check`, telling apart too where user data may be used for the bid but not kept for training. */
    decide(req: BidRequest): PrivacyDecision {
      const regs = req.regs as (Record<string, unknown> & { ext?: Record<string, unknown> }) | undefined;
      // A flag set in either placement (2.6, or 2.5's regs.ext) counts: one saying 0 does not hide the other.
      if (flagSet(regs?.coppa) || flagSet(regs?.ext?.coppa)) return 'coppa';
      // Limited ad tracking (lmt; iOS App Tracking Transparency other than not determined (0) or
      // authorized (3)): no identifier of the user at all, as Prebid Server strips them, so the
      // request is served contextually. Do Not Track (dnt, which OpenRTB 2.6 still carries) the
      // same: the browser's standing request not to be tracked, which the bidder's profiles and
      // frequency counts would do.
      const device = req.device as (Record<string, unknown> & { ext?: Record<string, unknown> }) | undefined;
      const atts = device?.ext?.atts;
      if (flagSet(device?.lmt) || flagSet(device?.dnt) || (atts !== undefined && atts !== null && atts !== 0 && atts !== 3)) return 'limited-tracking';
      const user = req.user as (Record<string, unknown> & { ext?: Record<string, unknown> }) | undefined;
      const given = (v: unknown): string => (typeof v === 'string' ? v : '');
      const consent = given(user?.consent);
      const extConsent = given(user?.ext?.consent);
      // OpenRTB 2.6 §3.2.3: gdpr absent is "unknown", not "does not apply": a consent string says it does.
      const gdprUnknown = (regs?.gdpr ?? regs?.ext?.gdpr ?? null) === null;
      // A later rule may still block: 'bid-only' is the answer only where none does.
      let bidOnly = false;
      if (flagSet(regs?.gdpr) || flagSet(regs?.ext?.gdpr) || (gdprUnknown && (consent !== '' || extConsent !== ''))) {
        // The consent may travel only in the GPP string's tcfeuv2 section.
        const tcf = tcfOf(consent, extConsent) ?? tcfOf(gppTcf(regs?.gpp), gppTcf(regs?.ext?.gpp)) ?? 'gdpr-no-consent';
        if (tcf === 'gdpr-no-consent') return tcf;
        bidOnly = tcf === 'bid-only';
      }
      if (uspOptOut(regs?.us_privacy) || uspOptOut(regs?.ext?.us_privacy)) return 'us-privacy-opt-out';
      // Global Privacy Control, as Prebid's page enrichment sets it (`regs.ext.gpc: "1"`; OpenRTB 2.6
      // has no field for it, `regs.gpc` is read where an exchange puts it there): the user's opt-out
      // of sale and sharing, which US state laws (California, Colorado, ...) make binding.
      if (flagSet(regs?.gpc) || flagSet(regs?.ext?.gpc)) return 'gpc-opt-out';
      const block = gppFields(regs);
      if (block === 'bid-only') bidOnly = true;
      else if (block !== '') return block;
      return bidOnly ? 'bid-only' : '';
    },
  };
  return api;
}

export type Privacy = ReturnType<typeof createPrivacy>;
