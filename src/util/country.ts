import { all } from 'iso-3166-1';

/** ISO 3166-1 alpha-2 → alpha-3, lower-cased, built once from the iso-3166-1 package's table. */
const ALPHA3 = new Map(all().map((c) => [c.alpha2.toLowerCase(), c.alpha3.toLowerCase()]));
const KNOWN = new Set(ALPHA3.values());

/** Whether a policy's country names one (alpha-2 or alpha-3, any case): "UK" or "GER" would target nobody. */
export function isCountryCode(raw: string): boolean {
  return KNOWN.has(countryCode(raw));
}

/**
 * A country code as targeting and features compare it: lower-cased ISO 3166-1 alpha-3. OpenRTB
 * asks for alpha-3 (`geo.country`), but some exchanges send alpha-2 ("US", "ch"): those are
 * converted, so a campaign that targets USA is not missed on them. Anything else is kept as it is.
 */
export function countryCode(raw: string): string {
  const c = raw.toLowerCase();
  return c.length === 2 ? ALPHA3.get(c) ?? c : c;
}
