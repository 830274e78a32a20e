/** The bidder under test: its origin, and its process id when this machine can read its CPU. */
export interface Target {
  origin: string;
  pid: number | null;
  /** Warnings and errors the spawned bidder logged (pino level >= 40), for the report. */
  logProblems: string[];
  close(): Promise<void>;
}

/** A bidder already running at `url` (`--url`, `--pid`): nothing to start or stop. */
export function externalTarget(url: string, pid: number | null): Target {
  return { origin: new URL(url).origin, pid, logProblems: [], close: async () => {} };
}
