import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { BidOutcome, Budget, BudgetLedger, Reservation, Settled, SettleOutcome, SettleSource } from '../types.js';
import { compileBudgets, dayBudgetMicros, toUsd, type BudgetRule } from './budget.js';
import { decodeRecords, encodeNoticeRecord, encodeRecord, encodeReserve, openJournalWriter, type JournalRecord, type JournalWriter, type WriteWatch, UnreadableRecordError, whyWriteFailed } from './journal.js';
import { foldAndWriteSnapshot, journalGenerations, SNAPSHOT, type CompactionJob } from './compact.js';
import { LedgerCore } from './state.js';
import { consoleLogger, type LedgerLogger } from './logger.js';
import { UnconfirmedSettlement } from './unconfirmed.js';
import type { CampaignState } from './index.js';
import { makeDir } from '../util/dir.js';

export interface MemoryLedgerOptions {
  /** Epoch ms; decides the UTC budget day and reservation expiry. */
  clock: () => number;
  budgets: Readonly<Record<string, Budget>>;
  /** Longest a reservation may be held; a later `expiresAtMs` is cut to now + this. */
  reservationTtlMs: number;
  /**
   * Directory for the journal (`journal.<generation>`) and its compacted `snapshot`. Absent: no
   * persistence (tests, simulations).
   */
  journalDir?: string;
  /** fdatasync settlements before they resolve (default true). Off, a kill -9 still loses nothing; a power cut may. */
  fsync?: boolean;
  /**
   * Group commit across loop turns: a settlement's fdatasync starts up to this many ms after the
   * first settlement waiting for it, shared by every settlement written meanwhile (default 0: at
   * once). A settlement is still acknowledged only once its record is synced.
   */
  syncWindowMs?: number;
  /**
   * How long finished bids are remembered, ms, from their finish or from their notices' signed
   * expiry (the reservation's, or the one a settling notice carries), whichever is later (default
   * 2 x reservationTtlMs; at least reservationTtlMs). Within it a repeated notice is a duplicate and
   * a late win settles while the budget has room. A bid forgotten after it is `unknown` to settle,
   * which moves nothing, and its notice is then past its signed expiry and refused, whatever TTL
   * signed it (a restart with a shorter one included): so forgetting can lose a very late win (the
   * exchange's billing report stays the reference) but never count one twice. Memory is bounded by
   * bid rate x (TTL + retention), about 280 bytes a bid.
   */
  retentionMs?: number;
  /** Compact once the live journal grows past this many bytes (default 64 MiB). */
  compactAfterBytes?: number;
  /**
   * Where compactions run. Default: 'worker' when compact-worker.js sits beside this module (the
   * built bidder), else 'inline' (running from TypeScript sources, as the test runner does).
   */
  compactor?: Compactor;
  /** The worker script (tests point it at a build of src/ledger/compact-worker.ts). */
  compactWorkerUrl?: URL;
  /** A pino logger's `error` and `info` where it has them (the journal's write failure and recovery), else `warn`. */
  logger?: LedgerLogger & Partial<Record<'error' | 'info', LedgerLogger['warn']>>;
}

export interface MemoryLedger extends BudgetLedger {
  /** Folds the snapshot and finished journal generations into a new snapshot, in a worker thread (or inline in small steps). */
  compact(): Promise<void>;
  readonly compactor: Compactor;
  /**
   * The clock stepped by `stepMs` (the steady clock's onStep, src/util/clock.ts): holds keep the
   * time they had left (LedgerCore.clockStepped). Call it from onStep, before the clock's new time
   * reaches the ledger.
   */
  clockStepped(stepMs: number): void;
}

/** Where compactions run: a worker thread (the default where its script exists) or, in steps, on this thread. */
export type Compactor = 'worker' | 'inline';

/** What a settle call set (`out`, returned), from the core's answer: told to the caller, also when the sync fails. */
function fillSettled(res: ReturnType<LedgerCore['settle']>, out: Settled): Settled {
  if (res.record !== undefined && (res.record.t === 's' || res.record.t === 'c')) {
    out.usd = toUsd(res.record.p);
    if (res.previous !== undefined) {
      out.previousUsd = toUsd(res.previous.priceMicros);
      out.wasOver = res.previous.over;
      out.over = res.previous.over || res.record.o === 1;
    }
  }
  return out;
}

const WORKER = new URL('./compact-worker.js', import.meta.url);

/**
 * In-process budget ledger with an append-only journal.
 *
 * Durability: every reserve, settle and release is written to the kernel before the call's
 * promise resolves (one `writeSync` for a scored batch's reservations, one for all the notices of
 * a loop turn), so a killed process loses
 * nothing; a settlement additionally waits for an fdatasync shared by all settlements in flight
 * (group commit), so a power cut loses no acknowledged spend. Reservations are not fsynced: if the machine (not the process) dies, an
 * unsynced reservation may vanish, and a win for it arriving later is `unknown` and moves nothing;
 * that cannot overspend, it under-counts one impression's cost, which is why the exchange's
 * billing report stays the reference for invoicing.
 */
export async function createMemoryLedger(opts: MemoryLedgerOptions): Promise<MemoryLedger> {
  const { clock, reservationTtlMs } = opts;
  if (!(reservationTtlMs > 0)) throw new Error('reservationTtlMs must be > 0');
  const logger: NonNullable<MemoryLedgerOptions['logger']> = opts.logger ?? consoleLogger;
  const retentionMs = opts.retentionMs ?? 2 * reservationTtlMs;
  if (!(retentionMs >= reservationTtlMs)) throw new Error('retentionMs must be >= reservationTtlMs (a forgotten bid must be past its notice expiry)');
  const compactAfterBytes = opts.compactAfterBytes ?? 64 * 1024 * 1024;
  const fsync = opts.fsync ?? true;
  const workerUrl = opts.compactWorkerUrl ?? WORKER;
  const compactor: Compactor = opts.compactor ?? (opts.compactWorkerUrl !== undefined || fs.existsSync(fileURLToPath(WORKER)) ? 'worker' : 'inline');
  const core = new LedgerCore(retentionMs);
  /** Returns the journal text of the days past that keep the daily budget they had, and of the daily budgets now in force. */
  const setRules = (rules: Map<string, BudgetRule>): string => {
    const today = core.today(clock());
    let text = '';
    for (const [id, rule] of rules) for (const rec of core.setRule(id, rule, today)) text += encodeRecord(rec);
    return text;
  };
  const setBudgets = (budgets: Readonly<Record<string, Budget>>): string => setRules(compileBudgets(budgets));
  // Set once the journal is read (a budget that cannot be honoured fails the start here, before the lock).
  const startRules = compileBudgets(opts.budgets);

  const dir = opts.journalDir;
  /**
   * Said once when journal writes or syncs start failing (each failure is counted by the caller, in
   * bidder_ledger_errors_total), and once when what failed works again: a full disk refuses every
   * bid's reservation, and a line per bid would fill what room is left. A failing fdatasync refuses
   * the settlements only, whose writes work: so only a sync that works ends it. A write failure
   * after it is said all the same, and replaces it (a write that works then ends it): the sync's
   * line told the operator bids went on while every reservation was refused.
   */
  let failing: 'write' | 'fdatasync' | null = null;
  const watch: WriteWatch = {
    failed(err, file, op) {
      if (failing === op || failing === 'write') return;
      failing = op;
      const refused = op === 'write' ? 'reservations (so bids) and settlements (notices answered 503, retried) are refused until a write works' : 'settlements are written but answered 503 (retried) until a sync works';
      (logger.error ?? logger.warn).call(logger, { file, code: err.code, err: err.message }, `ledger journal ${op} failed: ${whyWriteFailed(err)}; ${refused}`);
    },
    wrote(file, op) {
      if (failing !== op) return;
      failing = null;
      (logger.info ?? logger.warn).call(logger, { file }, 'journal writable again');
    },
  };
  let writer: JournalWriter | null = null;
  let generation = 0;
  let snapshotGeneration = 0;
  let compacting: Promise<void> | null = null;
  let lock: DirLock | null = null;
  /** Rule records ('p', 'q') whose write failed: written again ahead of the next ones, or at close. */
  let unwritten = '';
  /**
   * Journals a start's or a reload's rule records and waits for them to be on disk: a 'q' lost
   * to a power cut would make the next start give the days since it the daily budget before it
   * (reloads are rare: one fdatasync each). Failed, the rules are in force all the same and the
   * records are kept to write again; a restart before then judges the days since by the journal's
   * last 'q'.
   */
  async function writeRules(w: JournalWriter, text: string, when: string): Promise<void> {
    text = unwritten + text;
    if (text === '') return;
    try {
      await w.append(text);
      await w.durable();
      unwritten = '';
    } catch (err) {
      // Written but not known synced, they are written again too: a 'p' repeated keeps the first, a 'q' the last.
      unwritten = text;
      logger.warn({ err }, `ledger journal write failed ${when}: the daily budgets are in force, and their records kept in memory to write with the next reload or at close; a restart before then judges the days since by the daily budget the journal last recorded`);
    }
  }
  if (dir !== undefined) {
    makeDir(dir);
    lock = await lockDir(dir);
  }
  const worker = dir !== undefined && compactor === 'worker' ? compactionWorker(workerUrl, logger) : null;

  if (dir !== undefined) {
    try {
      snapshotGeneration = loadSnapshot(path.join(dir, SNAPSHOT), core);
      generation = snapshotGeneration;
      // What the replay changes in the folder (a torn tail cut, a folded file removed), done once
      // every file is read: a later file's refusal leaves the folder as the version that wrote it
      // left it (review fixrevj: a torn tail was cut in journal.1 before journal.2 refused).
      const mend: Array<() => void> = [];
      // Boot-time replay reads synchronously: nothing else runs before the ledger exists.
      for (const g of journalGenerations(dir)) {
        // Folded into the snapshot already: left by a crash between the snapshot's rename and the
        // unlinks of what it replaced, which nothing else would ever remove.
        if (g <= snapshotGeneration) {
          mend.push(() => fs.rmSync(path.join(dir, `journal.${g}`), { force: true }));
          continue;
        }
        const file = path.join(dir, `journal.${g}`);
        const buf = fs.readFileSync(file);
        const res = decodeRecords(buf, true);
        // A later version's record refuses the start before the file is touched (its torn tail left uncut).
        applyRecords(core, res.records, file, 'journal');
        if (res.damaged.length > 0) {
          // A complete line that fails its checksum is disk damage: that record is lost, the ones
          // after it are not (they were replayed). Said at every start until compaction folds the file.
          logger.warn({ file, damagedAt: res.damaged }, 'ledger journal has damaged records: skipped them, kept the records after them; what they recorded is lost');
        }
        if (res.error !== undefined) {
          logger.warn(
            { file, error: res.error, goodBytes: res.goodBytes, droppedBytes: buf.length - res.goodBytes },
            'ledger journal tail is corrupt; recovered up to the last good record',
          );
          mend.push(() => fs.truncateSync(file, res.goodBytes));
        }
        generation = g;
      }
      for (const m of mend) m();
      generation += 1;
      writer = openJournalWriter(path.join(dir, `journal.${generation}`), fsync, opts.syncWindowMs ?? 0, watch);
      // The days folded away first: set before, they got a 'p' each, dropped a moment later.
      core.expire(clock());
      // The rules after the journal: a daily budget edited while the bidder was down is a change
      // from the one the journal last recorded ('q'), and the days past keep theirs ('p'), as at a
      // reload. Set before, the days past were judged by the new one.
      await writeRules(writer, setRules(startRules), 'at start');
    } catch (err) {
      // A ledger that cannot start leaves the directory free for the next try.
      await worker?.close();
      await lock?.release();
      throw await startRefusal(err);
    }
  } else setRules(startRules);
  core.expire(clock());

  /** `inTurn`: notices (settle, once, release) share one write per loop turn; bids keep theirs per scored batch. */
  const append = (text: string, inTurn = false): Promise<void> => {
    if (writer === null) return Promise.resolve();
    const written = inTurn ? writer.appendInTurn(text) : writer.append(text);
    if (writer.bytes > compactAfterBytes && compacting === null) {
      compact().catch((err: unknown) => logger.warn({ err }, 'ledger compaction failed; the journal keeps growing'));
    }
    return written;
  };

  async function compact(): Promise<void> {
    if (dir === undefined || writer === null) return;
    if (compacting !== null) return compacting;
    compacting = (async () => {
      const upTo = generation;
      const old = writer as JournalWriter;
      generation += 1;
      writer = openJournalWriter(path.join(dir, `journal.${generation}`), fsync, opts.syncWindowMs ?? 0, watch);
      await old.close();
      const job: CompactionJob = { dir, upTo, snapshotGeneration, now: clock(), retentionMs };
      const folded = worker !== null ? await worker.run(job) : await foldAndWriteSnapshot(job, logger);
      snapshotGeneration = upTo;
      for (const g of folded) await fs.promises.unlink(path.join(dir, `journal.${g}`));
    })().finally(() => {
      compacting = null;
    });
    return compacting;
  }

  /**
   * The settlements and releases of one bid run one at a time, in call order: two in flight (a win
   * and its billing, or a loss, in one loop turn) whose shared write failed would each put back the
   * state from before its own call, the first under the second's change, and memory would hold
   * what no journal has (a settlement, or a reservation counted for a released bid).
   */
  const inFlight = new Map<string, Promise<unknown>>();
  const nothing = () => {};
  function inTurn<T>(bidId: string, op: () => Promise<T>): Promise<T> {
    const before = inFlight.get(bidId);
    const run = before === undefined ? op() : before.then(nothing, nothing).then(op);
    inFlight.set(bidId, run);
    const done = () => {
      if (inFlight.get(bidId) === run) inFlight.delete(bidId);
    };
    run.then(done, done);
    return run;
  }

  async function releaseNow(bidId: string): Promise<boolean> {
    const now = clock();
    const prev = core.peek(bidId);
    const rec = core.release(bidId, now);
    if (rec === null) return false;
    try {
      await append(encodeNoticeRecord(rec), true);
    } catch (err) {
      // Not written, so not released: the journal still holds the reservation, and so does memory.
      core.revert(rec, prev);
      throw err;
    }
    return true;
  }

  async function settleNow(bidId: string, priceUsd: number, source: SettleSource, unreservedCampaignId: string | undefined, settled: Settled | undefined, signedExpiryMs: number | undefined): Promise<SettleOutcome> {
    const now = clock();
    core.expire(now);
    const prev = core.peek(bidId);
    const res = core.settle(bidId, priceUsd, now, source, unreservedCampaignId, signedExpiryMs);
    if (res.overspend !== undefined) {
      logger.warn(
        { bidId, campaignId: res.overspend.campaignId, priceUsd: toUsd(res.overspend.priceMicros) },
        'win recorded as overspend: the budget has no room left for it (its reservation had ended, or a reload lowered the budget under it)',
      );
    }
    // The writer the record went to: compaction may start a new generation meanwhile.
    const w = writer;
    if (res.record?.t === 'b') {
      // That a billing confirmed the price: no money moves, and what it guards is the event log's
      // record of the billing, which is not synced either; so it waits for no disk flush of its
      // own (as the `once` key it replaced, a journal line of the notices' turn). Lost to a power
      // cut, a repeat of the billing is logged again, where a record synced ahead of the event
      // log's would have left it out for good. The answer still waits, as a repeat's, for the
      // settlement it confirms to be on disk.
      if (w !== null) {
        try {
          await w.durable();
          await append(encodeNoticeRecord(res.record), true);
        } catch (err) {
          // Not written: the retry confirms it afresh, and is logged then.
          core.revert(res.record, prev);
          throw err;
        }
      }
    } else if (res.record !== undefined && w !== null) {
      try {
        await append(encodeNoticeRecord(res.record), true);
      } catch (err) {
        // Not written (the writer cut it back off the file), so not done: memory goes back to
        // before the call and the caller answers "retry", which settles afresh.
        core.revert(res.record, prev);
        throw err;
      }
      // Written: the record is in the file, where a process killed from now on leaves it (the
      // page cache outlives the process) and a replay applies it. So the caller is told now
      // (`Settled.written`) and counts it before the sync: its answer still waits for the sync,
      // and the exchange's retry, should the process die meanwhile, is a duplicate after the
      // restart, which knows of no call to count it by. A win notice that raised a render's level
      // at its price moved no money: nothing to count.
      if (settled !== undefined && res.outcome !== 'duplicate') {
        fillSettled(res, settled);
        settled.written?.(res.outcome);
      }
      try {
        await w.durable();
      } catch (err) {
        // Written but not known durable: memory keeps it, as replay will (undoing it here let a
        // later notice write what replay then ignored), and the answer is "retry", its retry a
        // duplicate acknowledged after a fresh sync. The level raise is retried as it was; a
        // settlement stands, counted by a caller told it was written, else now.
        if (res.outcome === 'duplicate') throw err;
        throw new UnconfirmedSettlement(res.outcome as UnconfirmedSettlement['outcome'], err);
      }
    } else if (w !== null) {
      // A repeat is acknowledged no sooner than the settlement it repeats is on disk.
      await w.durable();
    }
    if (settled !== undefined) fillSettled(res, settled);
    return res.outcome;
  }

  /** A campaign's `state` on day `d`, expired reservations already let go. */
  function stateOf(campaignId: string, d: number): CampaignState {
    const acc = core.accounts.get(campaignId);
    if (acc === undefined) return { spentUsd: 0, reservedUsd: 0, budgetUsd: 0, overspentUsd: 0, spentBeforeUsd: 0, overspentBeforeUsd: 0 };
    const day = acc.days.get(d);
    const spent = day?.spent ?? 0;
    const over = day?.over ?? 0;
    return {
      spentUsd: toUsd(spent),
      reservedUsd: toUsd(day?.reserved ?? 0),
      budgetUsd: acc.rule === undefined ? 0 : toUsd(dayBudgetMicros(acc.rule, d, spent + over, acc.spent + acc.over)),
      overspentUsd: toUsd(over),
      spentBeforeUsd: toUsd(acc.spent - spent),
      overspentBeforeUsd: toUsd(acc.over - over),
    };
  }

  return {
    retentionMs,

    async reserve(items: Reservation[]): Promise<boolean[]> {
      const now = clock();
      core.expire(now);
      const out = new Array<boolean>(items.length);
      let text = '';
      const recs: JournalRecord[] = [];
      for (let i = 0; i < items.length; i++) {
        const rec = core.reserve(items[i], now, reservationTtlMs);
        out[i] = rec !== null;
        if (rec !== null && writer !== null) {
          text += rec.t === 'r' ? encodeReserve(rec) : encodeRecord(rec);
          recs.push(rec);
        }
      }
      if (text !== '') {
        try {
          await append(text);
        } catch (err) {
          // No phantom holds: a reservation that is not in the journal does not hold budget either.
          for (const rec of recs) core.revert(rec, undefined);
          throw err;
        }
      }
      return out;
    },

    settle(bidId: string, priceUsd: number, source: SettleSource = 'win', unreservedCampaignId?: string, settled?: Settled, signedExpiryMs?: number): Promise<SettleOutcome> {
      return inTurn(bidId, () => settleNow(bidId, priceUsd, source, unreservedCampaignId, settled, signedExpiryMs));
    },

    async once(key: string, untilMs: number): Promise<boolean> {
      const now = clock();
      const rec = core.once(key, untilMs, now);
      if (rec === null) return false;
      try {
        await append(encodeNoticeRecord(rec), true);
      } catch (err) {
        core.forgetOnce(key);
        throw err;
      }
      return true;
    },

    release(bidId: string): Promise<boolean> {
      return inTurn(bidId, () => releaseNow(bidId));
    },

    async bidOutcome(bidId: string): Promise<BidOutcome> {
      return core.outcome(bidId);
    },

    async state(campaignId: string) {
      const now = clock();
      core.expire(now);
      return stateOf(campaignId, core.today(now));
    },

    async states(campaignIds) {
      const now = clock();
      core.expire(now);
      const d = core.today(now);
      return campaignIds.map((id) => stateOf(id, d));
    },

    async configure(budgets) {
      const text = setBudgets(budgets);
      // The writer the records go to: compaction may start a new generation meanwhile.
      if (writer !== null) await writeRules(writer, text, 'at a reload');
      const now = clock();
      core.expire(now);
      return core.overCommitted(core.today(now)).filter((o) => o.campaignId in budgets);
    },

    compact,
    compactor,

    clockStepped(stepMs: number) {
      core.clockStepped(stepMs);
    },

    async close() {
      if (compacting !== null) await compacting.catch(() => {});
      await worker?.close();
      if (writer !== null && unwritten !== '') await writeRules(writer, '', 'at close');
      // The closed writer stays: a reserve or settle after close is refused by it instead of
      // being granted with no record.
      if (writer !== null) await writer.close();
      await lock?.release();
    },
  };
}

interface DirLock {
  release(): Promise<void>;
}

/**
 * One process per journal directory: two processes appending to one directory each grant the
 * whole budget (review 2026-12-02 item 3). The lock is a Unix socket `lock` in the directory,
 * listened on by the holder, which answers each connection with its pid. The kernel closes it
 * when the holder dies, however it dies, so a lock left by a kill -9 is seen as stale
 * (ECONNREFUSED) and taken over; a pid file cannot tell a dead holder from a reused pid (in a
 * container the bidder is pid 1 at every start). Node has no flock(2); this needs no native module.
 */
async function lockDir(dir: string): Promise<DirLock> {
  const file = path.join(dir, 'lock');
  // A Unix socket path longer than the kernel's sun_path is cut short: the socket would be made
  // under another name, and after a kill -9 the takeover would remove the wrong one, forever.
  if (Buffer.byteLength(file) > 107) {
    throw new Error(`ledger journal ${dir}: the path of its lock socket is ${Buffer.byteLength(file)} bytes, more than a Unix socket may have (107); choose a shorter ledger.journalPath`);
  }
  const server = net.createServer((sock) => sock.end(String(process.pid)));
  server.unref();
  const listen = () =>
    new Promise<NodeJS.ErrnoException | null>((resolve) => {
      server.once('error', resolve);
      server.listen(file, () => {
        server.off('error', resolve);
        resolve(null);
      });
    });
  const holderOf = () =>
    new Promise<string | null>((resolve) => {
      const sock = net.connect(file);
      let pid = '';
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => (pid += d));
      sock.on('end', () => resolve(pid || '?'));
      // Only "nobody listens" (or the file just went) means a dead holder; EACCES and the like say
      // nothing about it, and taking over a live holder's lock would give two processes the budget.
      sock.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED' || e.code === 'ENOENT' ? null : `unknown: ${e.code ?? e.message}`));
    });
  const inUse = (holder: string) =>
    new Error(
      `ledger journal ${dir} is in use by another bidder process (pid ${holder}); two processes on one journal would each spend the whole budget. Stop it; several bidders on one budget share a Redis ledger (ledger.redisUrl, --redis). A journal of its own would give this one the whole budget again`,
    );
  // Two processes starting together both find a dead holder's lock stale; were both to remove it,
  // the second would remove the first's fresh one and both would hold the journal. One takes over
  // at a time, under a guard directory (mkdir is atomic); a guard left by a taker that died is old.
  const guard = path.join(dir, 'lock.takeover');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const err = await listen();
    if (err === null) break;
    if (err.code !== 'EADDRINUSE' || Date.now() > deadline) throw new Error(`ledger journal ${dir}: cannot take its lock (${err.message})`);
    const holder = await holderOf();
    if (holder !== null) throw inUse(holder);
    try {
      fs.mkdirSync(guard);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const age = Date.now() - (fs.statSync(guard, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 5_000) fs.rmSync(guard, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    try {
      // With the guard held, stale still? Another taker may have finished just before.
      const now = await holderOf();
      if (now !== null) throw inUse(now);
      fs.rmSync(file, { force: true });
      const again = await listen();
      if (again !== null) throw new Error(`ledger journal ${dir}: cannot take its lock (${again.message})`);
      break;
    } finally {
      fs.rmSync(guard, { recursive: true, force: true });
    }
  }
  return {
    release: () =>
      new Promise<void>((resolve) => {
        // close() unlinks the socket file.
        server.close(() => resolve());
      }),
  };
}

/**
 * Applies the records read from `file` to `core`. One of a type this version does not read (written
 * by a later version: a rollback across a journal format change) throws an UnreadableRecordError
 * naming the file and the type, which refuses the start (`startRefusal`): skipped, the money it
 * recorded was forgotten with no word (before: a later version's settlement vanished from the
 * spend, and a build without the correction record `c` reported a billed price's correction as
 * never made). Also the reader of the carry into Redis (src/ledger/move.ts).
 */
export function applyRecords(core: LedgerCore, records: readonly JournalRecord[], file: string, what: 'journal' | 'snapshot'): void {
  try {
    for (const rec of records) core.apply(rec);
  } catch (err) {
    if (err instanceof UnreadableRecordError) throw err.inFile(file, what);
    throw err;
  }
}

/**
 * What a start that failed with `err` throws: a record this version does not read (`applyRecords`)
 * as the ledger's other start problems, a PolicyError (src/cli/serve.ts: its one line, exit 2,
 * no stack trace); anything else as it is. The class is imported here, when needed, not with the
 * module: the ledger's modules load with the ledger's and util's alone (a worker thread, and the
 * tests' child processes, run them so: test/helpers/transpile.ts).
 */
export async function startRefusal(err: unknown): Promise<unknown> {
  if (!(err instanceof UnreadableRecordError) || err.file === undefined) return err;
  try {
    const { PolicyError } = await import('../config/policies.js');
    return new PolicyError([err.message]);
  } catch {
    // Where the config modules are not there (the ledger alone): its own error, which names the file and the type.
    return err;
  }
}

/** Loads the snapshot into `core`; returns the journal generation it covers (0 when none). */
function loadSnapshot(file: string, core: LedgerCore): number {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const res = decodeRecords(buf, true);
  const head = res.records[0];
  const tail = res.records[res.records.length - 1];
  // The snapshot is renamed into place only after an fsync, so damage here is a disk fault, and
  // the journals it replaced are gone: refuse to start rather than forget spend.
  if (res.error !== undefined || res.damaged.length > 0 || head?.t !== 'h' || tail?.t !== 'z' || tail.n !== res.records.length) {
    throw new Error(`ledger snapshot ${file} is damaged (${res.error ?? (res.damaged.length ? `bad record at byte ${res.damaged[0]}` : 'incomplete')}); restore it from backup`);
  }
  applyRecords(core, res.records, file, 'snapshot');
  return head.g;
}

/**
 * The compaction worker thread, started with the ledger (starting a worker costs the starting
 * thread several milliseconds, so not at each compaction) and unref'd, so an idle one never keeps
 * the process alive. One job at a time (the ledger runs one compaction at a time). A worker that
 * dies fails the job in hand; the next job starts a new one.
 */
function compactionWorker(url: URL, logger: LedgerLogger) {
  let worker: Worker | null = null;
  let pending: { resolve: (folded: number[]) => void; reject: (err: Error) => void } | null = null;
  const fail = (err: Error) => {
    const p = pending;
    pending = null;
    if (p) p.reject(err);
    else logger.warn({ err: err.message }, 'ledger compaction worker failed; the next compaction starts another');
  };
  const start = (): Worker => {
    const w = new Worker(url);
    w.unref();
    w.on('message', (m: { warn?: { obj: object; msg: string }; done?: number[]; error?: string }) => {
      if (m.warn !== undefined) return logger.warn(m.warn.obj, m.warn.msg);
      const p = pending;
      pending = null;
      if (m.done !== undefined) p?.resolve(m.done);
      else p?.reject(new Error(`ledger compaction worker: ${m.error}`));
    });
    w.on('error', (err) => {
      if (worker === w) worker = null;
      fail(err);
    });
    w.on('exit', (code) => {
      if (worker !== w) return;
      worker = null;
      fail(new Error(`ledger compaction worker exited (code ${code})`));
    });
    return w;
  };
  worker = start();
  return {
    run(job: CompactionJob): Promise<number[]> {
      const w = (worker ??= start());
      return new Promise((resolve, reject) => {
        pending = { resolve, reject };
        w.postMessage(job);
      });
    },
    async close(): Promise<void> {
      const w = worker;
      worker = null;
      if (w) await w.terminate();
    },
  };
}
