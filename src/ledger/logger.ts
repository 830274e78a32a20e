/** The slice of pino's logger the ledger needs; a pino logger fits as is. */
export interface LedgerLogger {
  warn(obj: object, msg: string): void;
}

/** Fallback when no logger is injected: warnings are never silent. */
export const consoleLogger: LedgerLogger = {
  warn(obj, msg) {
    console.warn(JSON.stringify({ level: 'warn', msg, ...obj }));
  },
};
