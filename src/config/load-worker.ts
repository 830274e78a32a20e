/**
 * Worker-thread side of `loadPoliciesOffThread` (policies-off-thread.ts): reads, parses and validates the
 * policy directory in `workerData` with `loadPolicies`, posts one LoadAnswer (the set in parts, or
 * its problems) and ends.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { loadPolicies, PolicyError, toParts, type LastRates, type LoadAnswer } from './policies.js';
import type { Settings } from './settings.js';

// Lowest CPU priority for this thread only (Linux: setpriority on the thread id), so that on a
// machine with few cores the serving thread wins the CPU whenever both want it.
try {
  setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), 19);
} catch {
  // No /proc/thread-self (not Linux) or not permitted: the load runs at the process's priority.
}

const { dir, overrides, running, lastRates } = workerData as { dir: string; overrides: Partial<Settings>; running?: Settings; lastRates?: LastRates };
let answer: LoadAnswer;
try {
  answer = toParts(loadPolicies(dir, overrides, running, lastRates));
} catch (err) {
  answer = err instanceof PolicyError ? { problems: err.problems } : { error: (err as Error).message };
}
parentPort!.postMessage(answer);
