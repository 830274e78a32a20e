import * as fs from 'node:fs';
import * as path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { decodeRecords, encodeRecord, type JournalRecord, UnreadableRecordError } from './journal.js';
import { LedgerCore } from './state.js';
import type { LedgerLogger } from './logger.js';

export const SNAPSHOT = 'snapshot';
const JOURNAL = /^journal\.(\d+)$/;

/** What a compaction folds: the snapshot and every journal generation in (snapshotGeneration, upTo]. */
export interface CompactionJob {
  dir: string;
  upTo: number;
  snapshotGeneration: number;
  /** Epoch ms: reservations expired and finished bids forgotten as of this time. */
  now: number;
  retentionMs: number;
}

export function journalGenerations(dir: string): number[] {
  const gens: number[] = [];
  for (const name of fs.readdirSync(dir)) {
    const m = JOURNAL.exec(name);
    if (m) gens.push(Number(m[1]));
  }
  return gens.sort((a, b) => a - b);
}

/**
 * Folds the snapshot and the finished journal generations into a new snapshot (written to
 * `snapshot.tmp`, fdatasynced, renamed over `snapshot`, directory fsynced: a crash leaves the old
 * snapshot and journals or the new snapshot, never half of one). Returns the generations folded;
 * the caller deletes them once it has recorded the new snapshot generation. Runs in the compaction
 * worker (src/ledger/compact-worker.ts), or inline in small steps where no worker is available.
 */
export async function foldAndWriteSnapshot(job: CompactionJob, logger: LedgerLogger): Promise<number[]> {
  const { dir, upTo, snapshotGeneration } = job;
  const fold = new LedgerCore(job.retentionMs);
  await foldFile(path.join(dir, SNAPSHOT), fold, logger);
  const folded = journalGenerations(dir).filter((g) => g > snapshotGeneration && g <= upTo);
  for (const g of folded) await foldFile(path.join(dir, `journal.${g}`), fold, logger);
  fold.expire(job.now);
  await writeSnapshot(dir, upTo, fold);
  return folded;
}

/** Streams a journal or snapshot file into `core` in 16 KiB chunks (about 200 records, well under a millisecond each), yielding to the event loop between chunks. */
async function foldFile(file: string, core: LedgerCore, logger: LedgerLogger): Promise<void> {
  let stream: fs.ReadStream;
  try {
    await fs.promises.access(file);
    stream = fs.createReadStream(file, { highWaterMark: 16 * 1024 });
  } catch {
    return;
  }
  let carry: Buffer = Buffer.alloc(0);
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const buf = carry.length === 0 ? chunk : Buffer.concat([carry, chunk]);
    const res = decodeRecords(buf, false);
    try {
      for (const rec of res.records) core.apply(rec);
    } catch (err) {
      // A later version's record: folded into a snapshot without it, it would be lost for good once
      // the journal is unlinked. The compaction fails instead (the files stay as they are); a start
      // refuses such a journal, so a running ledger never compacts one.
      if (err instanceof UnreadableRecordError) throw err.inFile(file, path.basename(file) === SNAPSHOT ? 'snapshot' : 'journal');
      throw err;
    }
    // A damaged line loses its own record only, as at boot; the snapshot keeps everything after it.
    if (res.damaged.length > 0) logger.warn({ file, damaged: res.damaged.length }, 'ledger compaction skipped damaged records');
    carry = buf.subarray(res.goodBytes);
  }
  if (carry.length > 0) logger.warn({ file, bytes: carry.length }, 'ledger compaction ignored a torn final record');
}

async function writeSnapshot(dir: string, generation: number, core: LedgerCore): Promise<void> {
  const tmp = path.join(dir, `${SNAPSHOT}.tmp`);
  const fh = await fs.promises.open(tmp, 'w');
  try {
    let n = 1;
    let text = encodeRecord({ t: 'h', g: generation });
    let batch = 0;
    for (const rec of core.snapshot()) {
      text += encodeRecord(rec);
      n++;
      if (++batch === 128) {
        await fh.write(text);
        await yieldToLoop();
        text = '';
        batch = 0;
      }
    }
    text += encodeRecord({ t: 'z', n: n + 1 } satisfies JournalRecord);
    await fh.write(text);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await fs.promises.rename(tmp, path.join(dir, SNAPSHOT));
  const dh = await fs.promises.open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
