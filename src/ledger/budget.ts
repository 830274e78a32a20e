import type { Budget } from '../types.js';

/**
 * Budget arithmetic shared by the in-process and the Redis ledger. Money is held as integer
 * micro-dollars so both ledgers (JavaScript doubles here, Lua doubles in Redis) add exactly and
 * agree to the last unit; a bid of CPM 0.001 USD still costs a whole micro-dollar per impression.
 */

import { DAY_MS } from '../util/time.js';

export { DAY_MS };
const MICROS_PER_USD = 1_000_000;
/** Stand-ins for "unbounded" that survive JSON and Lua number formatting. */
export const NO_LIMIT = 9e15;

export function toMicros(usd: number): number {
  return Math.round(usd * MICROS_PER_USD);
}

export function toUsd(micros: number): number {
  return micros / MICROS_PER_USD;
}

/** UTC day number (days since the epoch) of an epoch-ms instant. */
export function utcDay(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

function isoDay(iso: string, field: string, campaignId: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso);
  const ms = m ? Date.UTC(+m[1], +m[2] - 1, +m[3]) : NaN;
  if (!m || !Number.isFinite(ms) || new Date(ms).toISOString().slice(0, 10) !== iso) {
    throw new Error(`campaign ${campaignId}: budget.${field} must be a date yyyy-mm-dd, got ${JSON.stringify(iso)}`);
  }
  return utcDay(ms);
}

/** A campaign budget compiled once at (re)configuration: micros and day numbers, no optionals. */
export interface BudgetRule {
  dailyMicros: number;
  lifetimeMicros: number;
  /** Inclusive UTC day numbers of the flight. */
  startDay: number;
  endDay: number;
}

/** Compiles a catalog budget; throws with the campaign id on a budget that cannot be honoured. */
export function compileBudget(campaignId: string, b: Budget): BudgetRule {
  if (!Number.isFinite(b.dailyUsd) || b.dailyUsd < 0) {
    throw new Error(`campaign ${campaignId}: budget.dailyUsd must be a finite number >= 0`);
  }
  if (b.lifetimeUsd !== undefined && (!Number.isFinite(b.lifetimeUsd) || b.lifetimeUsd < 0)) {
    throw new Error(`campaign ${campaignId}: budget.lifetimeUsd must be a finite number >= 0`);
  }
  const rule: BudgetRule = {
    dailyMicros: toMicros(b.dailyUsd),
    lifetimeMicros: b.lifetimeUsd === undefined ? NO_LIMIT : toMicros(b.lifetimeUsd),
    startDay: b.start === undefined ? -NO_LIMIT : isoDay(b.start, 'start', campaignId),
    endDay: b.end === undefined ? NO_LIMIT : isoDay(b.end, 'end', campaignId),
  };
  if (rule.startDay > rule.endDay) throw new Error(`campaign ${campaignId}: budget.start is after budget.end`);
  return rule;
}

export function compileBudgets(budgets: Readonly<Record<string, Budget>>): Map<string, BudgetRule> {
  const rules = new Map<string, BudgetRule>();
  const errors: string[] = [];
  for (const [id, b] of Object.entries(budgets)) {
    try {
      rules.set(id, compileBudget(id, b));
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (errors.length > 0) throw new Error(`invalid budgets:\n  ${errors.join('\n  ')}`);
  return rules;
}

/**
 * Micros that may still be committed on `day`: the tighter of the day's and the flight's
 * remainder, nothing outside the flight. Reservations and late settlements both test against it.
 */
export function headroomMicros(
  rule: BudgetRule,
  day: number,
  daySpent: number,
  dayReserved: number,
  totalSpent: number,
  totalReserved: number,
): number {
  if (day < rule.startDay || day > rule.endDay) return 0;
  return Math.min(rule.dailyMicros - daySpent - dayReserved, rule.lifetimeMicros - totalSpent - totalReserved);
}

/** The budget in force on `day` (what `Ledger.state` reports): the daily budget, cut by what the flight has left. */
export function dayBudgetMicros(rule: BudgetRule, day: number, daySpent: number, totalSpent: number): number {
  if (day < rule.startDay || day > rule.endDay) return 0;
  return Math.max(0, Math.min(rule.dailyMicros, rule.lifetimeMicros - (totalSpent - daySpent)));
}

/**
 * What a pacer should aim to spend on `day`: the daily budget, or, for a flight with a lifetime
 * budget, what the flight has left spread evenly over its remaining days (never more than daily).
 */
export function pacedDayBudgetUsd(rule: BudgetRule, day: number, spentBeforeUsd: number): number {
  if (day < rule.startDay || day > rule.endDay) return 0;
  const daily = rule.dailyMicros / 1e6;
  if (rule.lifetimeMicros >= 9e15) return daily;
  const daysLeft = rule.endDay >= 9e15 ? 1 : rule.endDay - day + 1;
  return Math.max(0, Math.min(daily, (rule.lifetimeMicros / 1e6 - spentBeforeUsd) / daysLeft));
}
