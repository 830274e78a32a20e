import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { ByteWriter } from '../json/bytes.js';
import { writeBidRecord, type EventRecord } from './records.js';

export interface EventLogOptions {
  dir: string;
  rotateBytes: number;
  enabled: boolean;
  clock: () => number;
  onError: (err: Error) => void;
  onDrop: () => void;
}

/** Records held in memory past this while the disk is slow are dropped (counted), never block. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const RETRY_MS = 5_000;

/**
 * Append-only NDJSON event log, rotated by size (`events-<time>.ndjson`). Writing never blocks a
 * response: lines go to a stream and are flushed by the event loop; if the disk is full or the
 * directory unwritable, records are counted as lost and the writer retries later.
 */
export function createEventLog(opts: EventLogOptions) {
  let stream: WriteStream | null = null;
  let bytes = 0;
  let brokenUntil = 0;
  let seq = 0;

  function open(): WriteStream | null {
    if (opts.clock() < brokenUntil) return null;
    try {
      mkdirSync(opts.dir, { recursive: true });
      const stamp = new Date(opts.clock()).toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
      const s = createWriteStream(join(opts.dir, `events-${stamp}-${seq++}.ndjson`), { flags: 'a' });
      s.on('error', (err) => {
        opts.onError(err);
        if (stream === s) stream = null;
        brokenUntil = opts.clock() + RETRY_MS;
        s.destroy();
      });
      bytes = 0;
      return s;
    } catch (err) {
      opts.onError(err as Error);
      brokenUntil = opts.clock() + RETRY_MS;
      return null;
    }
  }

  // Lines of one event-loop turn go to the stream as one Buffer: a write per record cost more
  // main-thread time (a Buffer and a writev slot each) than building the record itself. They are
  // written as UTF-8 into a buffer kept across turns, and copied out once per turn.
  const pending = new ByteWriter(64 * 1024);
  let pendingRecords = 0;
  let scheduled = false;

  function flush(): void {
    scheduled = false;
    if (pendingRecords === 0) return;
    if (stream) stream.write(pending.copy());
    else for (let i = 0; i < pendingRecords; i++) opts.onDrop();
    pending.pos = 0;
    pendingRecords = 0;
  }

  return {
    append(rec: EventRecord): void {
      if (!opts.enabled) return;
      if (!stream || bytes >= opts.rotateBytes) {
        flush();
        stream?.end();
        stream = open();
        if (!stream) {
          opts.onDrop();
          return;
        }
      }
      if (stream.writableLength + pending.pos > MAX_BUFFERED_BYTES) {
        opts.onDrop();
        return;
      }
      const from = pending.pos;
      if (rec.type === 'bid') writeBidRecord(pending, rec);
      else (pending.text(JSON.stringify(rec)), pending.text('\n'));
      bytes += pending.pos - from;
      pendingRecords++;
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    /** Flush and close the current file (shutdown). */
    close(): Promise<void> {
      flush();
      const s = stream;
      stream = null;
      if (!s) return Promise.resolve();
      return new Promise((resolve) => s.end(resolve));
    },
  };
}

export type EventLog = ReturnType<typeof createEventLog>;
