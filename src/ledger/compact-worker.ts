/**
 * Worker-thread side of ledger compactions. Folding a journal builds a second copy of the
 * ledger's state; on the serving thread its allocations cost garbage-collection pauses of tens of
 * milliseconds (young-generation copies of objects that all survive, then a full mark-compact of
 * the larger heap) however small the steps between yields. Here the fold has its own heap and its
 * own event loop. The ledger starts this worker once, with itself, and sends it one CompactionJob
 * per compaction; for each it posts `{ warn }` per warning, then `{ done: folded }` or `{ error }`.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { foldAndWriteSnapshot, type CompactionJob } from './compact.js';

// Lowest CPU priority for this thread only (Linux: setpriority on the thread id), so that on a
// machine with few cores the serving thread wins the CPU whenever both want it.
try {
  setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), 19);
} catch {
  // No /proc/thread-self (not Linux) or not permitted: the worker runs at the process's priority.
}

const port = parentPort;
port?.on('message', (job: CompactionJob) => {
  foldAndWriteSnapshot(job, {
    warn: (obj, msg) => port.postMessage({ warn: { obj: JSON.parse(JSON.stringify(obj)), msg } }),
  }).then(
    (folded) => port.postMessage({ done: folded }),
    (err: Error) => port.postMessage({ error: err.message }),
  );
});
