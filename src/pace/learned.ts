/**
 * What the pacer and the shader have learnt, kept across restarts: each campaign's traffic by hour
 * of day (the value pacer cannot relearn it before the next midnight, and plans the rest of a
 * restart's day without it), each creative's CTR and CVR calibration (thousands of impressions a
 * creative at CTRs of a few per mille) and the shader's competition per site and context (a long
 * tail of sites takes hours of notices to learn again). A deploy then costs the bidder little it
 * knew. With them go the hour's wins an hourly cap counts, which the ledger cannot tell the pacer,
 * and a flight's spend on the days before, which the bidder's ledger sync tells it (and replaces).
 *
 * One JSON file, written whole every `everyMs` and at close (to a temporary name, then renamed, so
 * a crash leaves the old file or the new one, never half of one). It is a cache, not
 * configuration: a file that is missing starts the bidder from its priors; one that cannot be read
 * or is not a snapshot is reported in one warning and ignored, and the next save replaces it.
 */
import { promises as fs, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { BidShader } from './shade.js';
import type { ValuePacer } from './value-pacer.js';

interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface LearnedStoreOptions {
  path: string;
  clock: () => number;
  logger: Logger;
  shader: BidShader;
  /** The value pacer; the curve pacer keeps nothing (absent). */
  pacer?: ValuePacer;
  /**
   * How often the state is written (default 5 min; 0: only at close). Building the text holds the
   * event loop: 6–22 ms for 1,000 campaigns, 3,000 creatives and 3,000 sites (323 KB), so not
   * often; a crash loses at most this much of what was learnt, a shutdown nothing.
   */
  everyMs?: number;
}

const VERSION = 1;

export function createLearnedStore(o: LearnedStoreOptions) {
  let timer: NodeJS.Timeout | null = null;
  let writing: Promise<void> = Promise.resolve();

  function load(): void {
    let text: string;
    try {
      text = readFileSync(o.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') o.logger.warn({ path: o.path, err: (err as Error).message }, 'learned state unreadable: the pacer and shader start from their priors');
      return;
    }
    try {
      const s = JSON.parse(text) as { version?: unknown; shader?: unknown; pacer?: unknown };
      if (s?.version !== VERSION) throw new Error(`version ${String(s?.version)}, this bidder reads ${VERSION}`);
      o.shader.restore(s.shader);
      if (o.pacer !== undefined && s.pacer !== undefined) o.pacer.restore(s.pacer);
      o.logger.info({ path: o.path }, 'learned state restored (shader competition, traffic by hour, creative calibration)');
    } catch (err) {
      o.logger.warn({ path: o.path, err: (err as Error).message }, 'learned state is not a snapshot this bidder reads: the parts not restored start from their priors');
    }
  }

  /** Writes the state now; a write still running is waited for first, so writes never interleave. */
  function save(): Promise<void> {
    const text = JSON.stringify({ version: VERSION, savedAtMs: o.clock(), shader: o.shader.snapshot(), pacer: o.pacer?.snapshot() });
    const tmp = `${o.path}.tmp`;
    writing = writing
      .then(async () => {
        await fs.mkdir(dirname(o.path), { recursive: true });
        await fs.writeFile(tmp, text);
        await fs.rename(tmp, o.path);
      })
      .catch((err: Error) => o.logger.warn({ path: o.path, err: err.message }, 'learned state not written; the last one written stays'));
    return writing;
  }

  return {
    /** Restores what the file holds, then saves every `everyMs`. */
    start(): void {
      load();
      const every = o.everyMs ?? 300_000;
      if (every > 0) timer = setInterval(() => void save(), every).unref();
    },
    save,
    async close(): Promise<void> {
      if (timer !== null) clearInterval(timer);
      timer = null;
      await save();
    },
  };
}

export type LearnedStore = ReturnType<typeof createLearnedStore>;
