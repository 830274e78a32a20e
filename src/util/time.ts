/** Milliseconds in an hour and in a (UTC) day: budgets, pacing slots and reports count in these. */
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
