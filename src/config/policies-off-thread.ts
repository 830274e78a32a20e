/**
 * Loading a policy set on a worker thread (load-worker.ts) for a bidder that is serving, and the
 * parts the set comes back in. The worker's URL is relative to this module: both are built into
 * dist/config/, and where load-worker.js is not there (the sources run by the test runner) the set
 * is loaded on the calling thread. policies.ts re-exports what is here and this imports its
 * `loadPolicies`: a cycle that holds because `loadPolicies` is read only when called.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { deserialize, serialize } from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { Campaign } from '../types.js';
import type { Settings } from './settings.js';
import { loadPolicies, type Policies } from './policies.js';
import type { LastRates } from './rates.js';
import { PolicyError, deepFreeze } from './policy-files.js';

const LOAD_WORKER = new URL('./load-worker.js', import.meta.url);
// Beside the built bidder; absent when running from TypeScript sources (the test runner), which
// load on the calling thread.
const OFF_THREAD = existsSync(fileURLToPath(LOAD_WORKER));

/**
 * `loadPolicies` on a worker thread of its own, for a bidder that is serving: parsing the YAML of a
 * large catalog holds a thread for seconds (5,000 campaigns: 6.4 MB, 5-10 s), during which a
 * loop that did it answered nothing. Rejects as `loadPolicies` throws: a PolicyError with the same
 * problems, so the same message. One worker per load: a reload is rare, and the parse's garbage
 * goes with the worker's heap. The checked set comes back structured-cloned in parts
 * (`toParts`), each received and frozen in a turn of the caller's loop of its own: received
 * whole, 5,000 campaigns held it ~250 ms.
 */
export async function loadPoliciesOffThread(dir: string, overrides: Partial<Settings> = {}, running?: Settings, lastRates?: LastRates): Promise<Policies> {
  if (!OFF_THREAD) return loadPolicies(dir, overrides, running, lastRates);
  const answer = await new Promise<LoadAnswer>((resolve, reject) => {
    const worker = new Worker(LOAD_WORKER, { workerData: { dir, overrides, running, lastRates } });
    worker.once('message', resolve);
    worker.once('error', reject);
    // Messages are delivered before 'exit': after an answer this rejection is a no-op.
    worker.once('exit', (code) => reject(new Error(`the policy loading thread exited (code ${code}) without an answer`)));
  });
  if ('problems' in answer) throw new PolicyError(answer.problems);
  if ('error' in answer) throw new Error(answer.error);
  const campaigns: Campaign[] = [];
  for (const part of answer.parts) {
    await nextTurn();
    for (const c of deserialize(part) as Campaign[]) campaigns.push(deepFreeze(c));
  }
  return deepFreeze({ campaigns, ...(deserialize(answer.rest) as Omit<Policies, 'campaigns'>) });
}

/** Campaigns per part of a LoadAnswer: ~15 ms to receive at 250. */
const PART_CAMPAIGNS = 250;

/** What the load worker (load-worker.ts) answers: the policy set in parts, or why there is none. */
export type LoadAnswer = { parts: Uint8Array[]; rest: Uint8Array } | { problems: string[] } | { error: string };

/** A policy set as the load worker sends it: its campaigns in slices, then the rest, each serialized. */
export function toParts({ campaigns, ...rest }: Policies): { parts: Uint8Array[]; rest: Uint8Array } {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < campaigns.length; i += PART_CAMPAIGNS) parts.push(serialize(campaigns.slice(i, i + PART_CAMPAIGNS)));
  return { parts, rest: serialize(rest) };
}
