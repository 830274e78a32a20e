/**
 * How far a reload (or a start, against the last run's rates) may move a currency's exchange rate
 * without a confirmation in currency.yaml: a rate off by a power of ten bids in the exchange's
 * currency at that many times the price the ledger records. `rateMoves` lists the moves and the
 * problem naming those past MAX_RATE_MOVE; `LastRates` is what a policy set is checked against.
 */
import type { Policies } from './policies.js';

/**
 * The rates a policy set is checked against (`rateMoves`): the running ones for a reload, the last
 * run's at a start; `what` names the bound in the problem.
 */
export interface LastRates {
  rates: ReadonlyMap<string, number>;
  what: string;
}

/**
 * The most a reload may move a currency's rate, as a ratio either way (1.25: 0.92 → 1.15 or
 * 0.736). A daily update moves a rate by a few percent; a typo off by a power of ten moves it by
 * 10 × or more, and since a bid is priced at USD × rate but reserved and settled at its price ÷ the
 * rate signed in its URLs, a rate 100 × too high bids 100 × more in the exchange's currency while
 * the ledger records what is billed ÷ 100 (maxBidCpmUsd, in USD, does not stop it).
 */
export const MAX_RATE_MOVE = 1.25;

/** A rate a reload moves: units of `currency` per USD, `from` the running one, `to` the new. */
export interface RateChange {
  currency: string;
  from: number;
  to: number;
}

/**
 * The rates `next` moves from those `running`, and one problem naming every move past
 * MAX_RATE_MOVE that `next.confirmedRates` does not confirm at exactly its new rate (a confirmation
 * left in the file is inert at any other rate, so a later typo is caught again). A currency added
 * or removed is not a move; `running` holds the rates to check against (src/live/live.ts keeps
 * every currency's last rate, removed ones too, so a removal and a re-adding are one move, and
 * keeps them across restarts in `ratesFile`). `what`: the bound's name in the problem.
 */
export function rateMoves(running: ReadonlyMap<string, number>, next: Pick<Policies, 'ratesPerUsd' | 'confirmedRates'>, what = 'a reload may move a rate'): { changes: RateChange[]; problems: string[] } {
  const changes: RateChange[] = [];
  const unconfirmed: RateChange[] = [];
  for (const [currency, to] of next.ratesPerUsd) {
    const from = running.get(currency);
    if (from === undefined || from === to) continue;
    changes.push({ currency, from, to });
    // Within the bound, its ends included: 0.736 / 0.92 is 0.7999999999999999 in floating point.
    const ratio = to / from;
    if (ratio <= MAX_RATE_MOVE * (1 + 1e-9) && ratio >= (1 - 1e-9) / MAX_RATE_MOVE) continue;
    if (next.confirmedRates?.get(currency) !== to) unconfirmed.push({ currency, from, to });
  }
  if (unconfirmed.length === 0) return { changes, problems: [] };
  const moves = unconfirmed.map(({ currency, from, to }) => `${currency} ${from} → ${to} (× ${Number((to / from).toPrecision(3))})`).join(', ');
  const confirm = unconfirmed.map(({ currency, to }) => `${currency}: ${to}`).join(', ');
  const share = Math.round((MAX_RATE_MOVE - 1) * 100);
  return {
    changes,
    problems: [`currency.yaml: ${moves}: more than the ${share} % ${what}; confirm ${unconfirmed.length === 1 ? 'it' : 'them'} with \`confirmChanges: { ${confirm} }\` in currency.yaml, or correct the rate${unconfirmed.length === 1 ? '' : 's'}`],
  };
}
