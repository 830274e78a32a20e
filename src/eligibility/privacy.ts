import { TCString } from '@iabtechlabtcf/core';
import { LRUCache } from 'lru-cache';
import type { BidRequest } from 'iab-openrtb/v26';

/** Why user-level data may not be used for a request ('' = it may). */
export type PrivacyBlock = '' | 'coppa' | 'gdpr-no-consent' | 'us-privacy-opt-out';

/** TCF v2 purposes a personalised bid needs: store/access (1), personalised ads profile (3) and selection (4). */
const REQUIRED_PURPOSES = [1, 3, 4];

export interface PrivacyOptions {
  /** Our IAB Global Vendor List id; when set, vendor consent is required as well. */
  vendorId?: number;
}

/**
 * Decides whether a request allows user-level data (OpenRTB 2.6 §3.2.3 regs, §3.2.20 user.consent;
 * 2.5 carries them in regs.ext / user.ext). Decoded TC strings are cached: exchanges send the same
 * consent string for many requests, and decoding one costs tens of microseconds.
 */
export function createPrivacy(opts: PrivacyOptions = {}) {
  const cache = new LRUCache<string, boolean>({ max: 10_000 });

  function consentAllows(tc: string): boolean {
    const hit = cache.get(tc);
    if (hit !== undefined) return hit;
    let ok: boolean;
    try {
      const model = TCString.decode(tc);
      ok = REQUIRED_PURPOSES.every((p) => model.purposeConsents.has(p));
      if (ok && opts.vendorId !== undefined) ok = model.vendorConsents.has(opts.vendorId);
    } catch {
      // An undecodable consent string is no consent: the safe reading under GDPR.
      ok = false;
    }
    cache.set(tc, ok);
    return ok;
  }

  return {
    check(req: BidRequest): PrivacyBlock {
      const regs = req.regs as (Record<string, unknown> & { ext?: Record<string, unknown> }) | undefined;
      if (regs?.coppa === 1) return 'coppa';
      const gdpr = regs?.gdpr ?? regs?.ext?.gdpr;
      if (gdpr === 1) {
        const user = req.user as (Record<string, unknown> & { ext?: Record<string, unknown> }) | undefined;
        const consent = user?.consent ?? user?.ext?.consent;
        if (typeof consent !== 'string' || consent.length === 0 || !consentAllows(consent)) return 'gdpr-no-consent';
      }
      const usp = regs?.us_privacy ?? regs?.ext?.us_privacy;
      // US Privacy string "1YYN": the third character is the opt-out-of-sale flag.
      if (typeof usp === 'string' && usp.length === 4 && usp[2] === 'Y') return 'us-privacy-opt-out';
      return '';
    },
  };
}

export type Privacy = ReturnType<typeof createPrivacy>;
