/** Floors in USD CPM as eligibility reads them from an imp, its video or audio object, or a deal. */

type Obj = Record<string, any>;

/**
 * The floor, USD CPM, that `rules` (a Video or Audio object, or a Deal) set for an ad of `durSec`
 * seconds (OpenRTB 2.6; as `bid.dur` declares it, rounded up): `mincpmpersec` times its length, and every `durfloors` rule whose range
 * (`mindur`, `maxdur`, either end open) holds it; the highest, in `cur`'s units converted. 0: none.
 */
export function durationFloorUsd(rules: Obj, exactSec: number, cur: unknown, rates: ReadonlyMap<string, number>): number {
  return durationFloorOf(minCpmPerSec(rules), Array.isArray(rules.durfloors) ? rules.durfloors : null, exactSec, cur, rates);
}

/** `mincpmpersec` where a positive number, else 0. */
export function minCpmPerSec(rules: Obj): number {
  return typeof rules.mincpmpersec === 'number' && rules.mincpmpersec > 0 ? rules.mincpmpersec : 0;
}

/** As durationFloorUsd, from `mincpmpersec` (minCpmPerSec) and `durfloors` (null: not an array) read beforehand. */
export function durationFloorOf(perSec: number, durfloors: readonly Obj[] | null, exactSec: number, cur: unknown, rates: ReadonlyMap<string, number>): number {
  // The exchange applies its floors to the length the bid declares, `bid.dur`: whole seconds, rounded up.
  const durSec = Math.ceil(exactSec);
  let f = perSec * durSec;
  if (durfloors !== null) {
    for (const r of durfloors) {
      if (!r || typeof r.bidfloor !== 'number') continue;
      if ((typeof r.mindur === 'number' && durSec < r.mindur) || (typeof r.maxdur === 'number' && durSec > r.maxdur)) continue;
      if (r.bidfloor > f) f = r.bidfloor;
    }
  }
  return f > 0 ? currencyToUsd(f, cur, rates) : 0;
}

/**
 * A price in `cur` (absent: USD) in USD at `rates` (units per USD); NaN for a non-zero amount in an
 * unknown currency (0 is 0 in any). The ledger's `toUsd` is micro-dollars to dollars.
 */
export function currencyToUsd(amount: number, cur: unknown, rates: ReadonlyMap<string, number>): number {
  if (amount === 0 || cur === undefined || cur === null || cur === 'USD') return amount;
  const rate = rates.get(cur as string);
  return rate === undefined ? NaN : amount / rate;
}
