/**
 * What the pacer and the shader have learnt, kept across restarts: each campaign's traffic by hour
 * of day (the value pacer cannot relearn it before the next midnight, and plans the rest of a
 * restart's day without it), each creative's CTR and CVR calibration (thousands of impressions a
 * creative at CTRs of a few per mille) and the shader's competition per site and context (a long
 * tail of sites takes hours of notices to learn again). A deploy then costs the bidder little it
 * knew. With them go the hour's wins an hourly cap counts, which the ledger cannot tell the pacer,
 * and a flight's spend on the days before, which the bidder's ledger sync tells it (and replaces).
 *
 * One JSON file, written whole every `everyMs` and at close (to a temporary name, synced, then renamed, so
 * a crash leaves the old file or the new one, never half of one). It is a cache, not
 * configuration: a file that is missing, or older than the newest other learned file of its folder
 * by over SIBLING_NEWER_MS, seeds the process from that file (a change of `serve --workers`:
 * learned.json and learned.w<i>.json), or else starts it from its priors; one that cannot be
 * read, is not a snapshot or is older than MAX_LEARNED_AGE_MS is reported in one warning and
 * ignored, and the next save replaces it.
 */
import { promises as fs, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { BidShader } from './shade.js';
import type { ValuePacer } from './value-pacer.js';
import type { ValuePacerSnapshot } from './value-snapshot.js';
import { makeDir } from '../util/dir.js';

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

/**
 * A snapshot older than this is ignored, with a warning: a week-old day's traffic, calibration and
 * competition are no longer what the bidder sees, and priors relearn within hours. Left behind by
 * a change of `serve --workers` and found again by the change back, such a file would otherwise
 * come back at any age. A constant, not a setting: it only guards against a stale cache.
 */
export const MAX_LEARNED_AGE_MS = 7 * 86_400_000;

/**
 * How much newer than this process's own file another learned file of its folder must be to seed
 * it instead: its own file was then left by a shape of `serve --workers` that has run since (1 to
 * N, then back to 1), and is older than what that shape learnt. Live processes of one shape all save
 * every few minutes (`everyMs`, and at close), so their files are never an hour apart.
 */
export const SIBLING_NEWER_MS = 3_600_000;

/** This process's file and those of the other process shapes of one journal folder: `serve` and its workers. */
const LEARNED_FILE = /^learned(\.w\d+)?\.json$/;

interface Snapshot {
  version?: unknown;
  savedAtMs?: unknown;
  shader?: unknown;
  pacer?: unknown;
}

export function createLearnedStore(o: LearnedStoreOptions) {
  let timer: NodeJS.Timeout | null = null;
  let writing: Promise<void> = Promise.resolve();

  /** The file's snapshot, if it has one of this version no older than the bound; undefined when missing; null after a warning. */
  function read(path: string): Snapshot | undefined | null {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      o.logger.warn({ path, err: (err as Error).message }, 'learned state unreadable: the pacer and shader start from their priors');
      return null;
    }
    try {
      const s = JSON.parse(text) as Snapshot;
      if (s?.version !== VERSION) throw new Error(`version ${String(s?.version)}, this bidder reads ${VERSION}`);
      // Files written before savedAtMs was kept have no age to judge: taken as they are.
      const ageMs = typeof s.savedAtMs === 'number' ? o.clock() - s.savedAtMs : 0;
      if (ageMs > MAX_LEARNED_AGE_MS) {
        o.logger.warn({ path, ageHours: Math.round(ageMs / 3_600_000), maxAgeHours: MAX_LEARNED_AGE_MS / 3_600_000 }, 'learned state too old, ignored: the pacer and shader start from their priors');
        return null;
      }
      return s;
    } catch (err) {
      o.logger.warn({ path, err: (err as Error).message }, 'learned state is not a snapshot this bidder reads: the parts not restored start from their priors');
      return null;
    }
  }

  function restore(path: string, s: Snapshot, own: boolean, why = ''): void {
    try {
      o.shader.restore(s.shader);
      if (o.pacer !== undefined && s.pacer !== undefined) o.pacer.restore(own ? s.pacer : seed(s.pacer));
      if (own) o.logger.info({ path }, 'learned state restored (shader competition, traffic by hour, creative calibration)');
      else o.logger.info({ path, own: o.path }, `learned state seeded from ${basename(path)}, ${o.path} ${why} (shader competition, traffic by hour scaled to this process's share, creative calibration; not its spend or its day so far)`);
    } catch (err) {
      o.logger.warn({ path, err: (err as Error).message }, 'learned state is not a snapshot this bidder reads: the parts not restored start from their priors');
    }
  }

  /**
   * Another process's pacer snapshot, as this process takes it. Its spend is its own: the hour's
   * wins it counted against its share of an hourly cap (N workers seeded from one process's file
   * would each count all of them), and the delivery sums in the unit of its share; the ledger's
   * sync gives the spend, the delivery factor relearns within its 4-hour half-life. Its traffic by
   * hour is the fleet's written at its share, which the pacer's restore divides by
   * (`ValuePacerSnapshot.share`), and is forecast at this process's share (1 to 2 workers: a worker
   * seeded with the single process's 2,000 a day as its own, seeing 1,000, spent 0.105 of 0.5 by
   * noon against 0.208 on its own counts). Without the share they were counted at (older files)
   * they are dropped, and relearnt at the next midnight: read at this process's share, a single
   * process's counts would be twice a worker's. Its day so far (`today`) is another process's,
   * never this one's. What its days delivered against its plan (`learntDelivery`) is a ratio, taken
   * at this process's share.
   */
  function seed(pacer: unknown): unknown {
    const p = pacer as Partial<ValuePacerSnapshot> | null;
    const from = p?.share;
    const counted = typeof from === 'number' && from > 0 && from <= 1;
    return { ...p, campaigns: counted ? p?.campaigns : [], spend: undefined, delivery: undefined, today: undefined };
  }

  /**
   * The newest snapshot among the other learned files of the folder: the single process's or
   * another worker's, left by a change of `serve --workers` (1 to N, N to fewer, N to 1).
   */
  function newestSibling(): { path: string; s: Snapshot; at: number } | undefined {
    let names: string[];
    try {
      names = readdirSync(dirname(o.path));
    } catch {
      return undefined;
    }
    let best: { path: string; s: Snapshot; at: number } | undefined;
    for (const name of names.sort()) {
      const path = join(dirname(o.path), name);
      if (!LEARNED_FILE.test(name) || path === o.path) continue;
      const s = read(path);
      if (!s) continue;
      const at = typeof s.savedAtMs === 'number' ? s.savedAtMs : -Infinity;
      if (best === undefined || at > best.at) best = { path, s, at };
    }
    return best;
  }

  function load(): void {
    const own = read(o.path);
    // Missing, too old, or left by a process shape that another has run after: another process
    // shape's file may know more. An own file without its time is taken as it is.
    const sibling = newestSibling();
    const ownAt = typeof own?.savedAtMs === 'number' ? own.savedAtMs : Infinity;
    if (own && !(sibling !== undefined && sibling.at - ownAt > SIBLING_NEWER_MS)) return restore(o.path, own, true);
    if (sibling !== undefined) {
      const why = own === undefined ? 'missing' : own === null ? 'not used' : `older by ${Math.round((sibling.at - ownAt) / 3_600_000)} h`;
      return restore(sibling.path, sibling.s, false, why);
    }
    if (own === undefined) o.logger.info({ path: o.path }, `no learned state at ${o.path}: starting from priors`);
  }

  /** Writes the state now; a write still running is waited for first, so writes never interleave. */
  function save(): Promise<void> {
    const text = JSON.stringify({ version: VERSION, savedAtMs: o.clock(), shader: o.shader.snapshot(), pacer: o.pacer?.snapshot() });
    const tmp = `${o.path}.tmp`;
    writing = writing
      .then(async () => {
        // Not fs.mkdir's recursive, which spins forever where mkdir answers ENOENT (src/util/dir.ts).
        makeDir(dirname(o.path));
        const out = await fs.open(tmp, 'w');
        try {
          await out.writeFile(text);
          // Before the rename, as the caps file (src/freqcap/freqcap.ts): a power cut must leave the old state or the new.
          await out.datasync();
        } finally {
          await out.close();
        }
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
