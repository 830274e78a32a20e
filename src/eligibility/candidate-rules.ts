/**
 * The request's rules a candidate is checked against once the index has admitted it: category
 * blocks and allow lists, languages, advertiser blocks, a deal's advertiser allow list, segments.
 */
import type { Candidate } from './catalog.js';

/** Whether any of `values` is in `set` (a loop: a `some` callback would be a closure per candidate). */
export function anyIn(values: readonly string[], set: ReadonlySet<string>): boolean {
  for (const v of values) if (set.has(v)) return true;
  return false;
}

/**
 * Whether the request's category rules refuse a candidate: `bcat` names one of its categories, or
 * `acat` leaves one of them out (or it declares none). A code covers its descendants: in IAB 1.0
 * (`cattax` 1) a tier-1 code its subcategories ('IAB17' covers 'IAB17-3'); in another taxonomy
 * the ancestors each `catByTaxonomy` code is written after. A campaign without codes there is
 * refused, since it cannot be shown to comply.
 */
export function categoryRefused(cand: Candidate, cattax: number, bcat: ReadonlySet<string>, acat: ReadonlySet<string>): boolean {
  if (cattax === 1) {
    // Without categories a campaign cannot be shown to stay out of bcat, nor inside acat.
    if (cand.cats.length === 0) return true;
    if (bcat.size && isBlocked(cand.catKeys, bcat)) return true;
    if (acat.size === 0) return false;
    for (const c of cand.cats) if (!acat.has(c) && !acat.has(c.split('-')[0])) return true;
    return false;
  }
  const own = cand.ownCatsByTaxonomy?.get(cattax);
  if (own === undefined) return true;
  if (bcat.size && isBlocked(cand.catByTaxonomy!.get(cattax)!, bcat)) return true;
  if (acat.size) for (const path of own.paths) if (!anyIn(path, acat)) return true;
  return false;
}

/**
 * Whether a creative's language is among those a request allows: `wlang` names primary languages
 * (ISO 639-1), `wlangb` BCP 47 language ranges, read by basic filtering (RFC 4647 §3.3.1): a range
 * allows the tags it is, case-blind, a prefix of ending at a subtag (`zh-Hant` allows `zh-Hant-TW`,
 * not `zh-Hans`; `en-US` does not allow `en`), and `*` allows any. A creative that declares none
 * cannot be shown to comply; `xx` (no linguistic content) fits any.
 */
export function languageAllowed(language: string | undefined, wlang: ReadonlySet<string>, wlangb: ReadonlySet<string>): boolean {
  if (language === undefined) return false;
  const tag = language.toLowerCase();
  if (tag === 'xx') return true;
  const dash = tag.indexOf('-');
  if (wlang.size !== 0 && !wlang.has(dash < 0 ? tag : tag.slice(0, dash))) return false;
  if (wlangb.size === 0 || wlangb.has(tag) || wlangb.has('*')) return true;
  for (let end = tag.lastIndexOf('-'); end > 0; end = tag.lastIndexOf('-', end - 1)) if (wlangb.has(tag.slice(0, end))) return true;
  return false;
}

/**
 * Whether an allow list of advertiser domains (a deal's `wadomain`) names one of the campaign's
 * `adomain`, as its bids state them: case-blind but exactly, since an exchange checks `bid.adomain`
 * against the list so; a parent domain (`brand.example`) does not admit `shop.brand.example`.
 * Unlike `badv`, where blocking a parent blocks its subdomains too.
 */
export function admitsAdvertiser(wadomain: readonly unknown[], adomain: readonly string[]): boolean {
  for (const a of wadomain) {
    if (typeof a !== 'string') continue;
    const want = a.toLowerCase();
    for (const d of adomain) if (d.toLowerCase() === want) return true;
  }
  return false;
}

/** Whether any of the candidate's keys (lower-cased at catalog build) is in a block list. */
export function isBlocked(keys: ReadonlySet<string>, blocked: ReadonlySet<string>): boolean {
  for (const k of keys) if (blocked.has(k)) return true;
  return false;
}
