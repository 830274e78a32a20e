import { parentPort, workerData } from 'node:worker_threads';
import { createBidder, type AdminAction, type AdminResult } from './bidder.js';
import type { Settings } from './config/settings.js';

/**
 * One bidder on a worker thread (`bidder serve --workers N`). uWebSockets.js apps on several
 * threads share the listening port (SO_REUSEPORT), so the kernel spreads connections over them.
 * Each worker has its own scorer and model; budgets are shared through the Redis ledger.
 * Protocol with the main thread: 'metrics' → this worker's metrics JSON; 'stop' → drain and exit;
 * 'fanout' (from a worker whose admin route was called) → 'apply' on every other worker, whose
 * 'applied' results come back to it as 'fanned'; 'lock' → 'locked' once no other worker's admin
 * action is under way, until its 'unlock'.
 */
interface WorkerInput {
  policiesDir: string;
  overrides: Partial<Settings>;
  index: number;
  workers: number;
}

const input = workerData as WorkerInput;
const port = parentPort!;
let pending = 0;
const waiting = new Map<number, (text: string) => void>();
const fannedOut = new Map<number, (results: AdminResult[]) => void>();
const locked = new Map<number, () => void>();

const bidder = await createBidder({
  policiesDir: input.policiesDir,
  overrides: input.overrides,
  workerIndex: input.index,
  workers: input.workers,
  metricsSource: () =>
    new Promise((resolve) => {
      const id = ++pending;
      waiting.set(id, resolve);
      port.postMessage({ type: 'collect', id });
    }),
  peers: {
    apply: (action) =>
      new Promise((resolve) => {
        const id = ++pending;
        fannedOut.set(id, resolve);
        port.postMessage({ type: 'fanout', id, action });
      }),
    async exclusive(run) {
      await new Promise<void>((resolve) => {
        const id = ++pending;
        locked.set(id, resolve);
        port.postMessage({ type: 'lock', id });
      });
      try {
        return await run();
      } finally {
        port.postMessage({ type: 'unlock' });
      }
    },
  },
});

port.on('message', async (m: { type: string; id?: number; text?: string; action?: AdminAction; results?: AdminResult[] }) => {
  if (m.type === 'metrics') port.postMessage({ type: 'metrics', id: m.id, json: await bidder.metricsJson() });
  else if (m.type === 'apply') port.postMessage({ type: 'applied', id: m.id, result: await bidder.applyAdmin(m.action!) });
  else if (m.type === 'locked') {
    locked.get(m.id!)?.();
    locked.delete(m.id!);
  } else if (m.type === 'fanned') {
    fannedOut.get(m.id!)?.(m.results!);
    fannedOut.delete(m.id!);
  }
  else if (m.type === 'collected') {
    waiting.get(m.id!)?.(m.text!);
    waiting.delete(m.id!);
  } else if (m.type === 'stop') {
    await bidder.close();
    port.postMessage({ type: 'stopped' });
  }
});
port.postMessage({ type: 'listening', port: bidder.port, ready: bidder.ready() });
