import { BroadcastChannel, parentPort, workerData } from 'node:worker_threads';
import { createBidder, type AdminAction, type AdminResult } from './bidder.js';
import { freezePolicies, type Policies } from './config/policies.js';
import type { Settings } from './config/settings.js';

/**
 * One bidder on a worker thread (`bidder serve --workers N`). uWebSockets.js apps on several
 * threads share the listening port (SO_REUSEPORT), so the kernel spreads connections over them.
 * Each worker has its own scorer and model; budgets are shared through the Redis ledger.
 * Protocol with the main thread: 'listening' (with its shutdownGraceMs) once it serves; 'serving'
 * once every worker listens (its /readyz answers 503 until then); 'metrics' →
 * this worker's metrics JSON, with the ledger's budget gauges where `ledger` is true (one worker per scrape); 'reload' (the process's SIGHUP) → a policy reload as the admin route's,
 * applied on every worker; 'modelChanged' (models/CURRENT changed) → the version it
 * names loaded as an admin reload without a version, applied on every worker; 'stop' → drain, close its connections, write its state, 'stopped'
 * (with `failed`, the error, where its close threw), and end;
 * 'fanout' (from a worker whose admin route was called) → 'apply' on every other worker, whose
 * 'applied' results come back to it as 'fanned'; 'lock' → 'locked' once no other worker's admin
 * action is under way, until its 'unlock'. Notices for bids another worker made go to the others
 * on a BroadcastChannel of the process's workers (`noticeChannel`), a batch per loop turn.
 * An uncaught error once serving (a bug outside a request handler, or a rejection nobody handled)
 * is logged with its stack (`unhandled error ...`), said to the main thread as 'failing' (with the
 * error), and the worker stops as on 'stop' and ends with exit code 1; the other workers serve on.
 */
interface WorkerInput {
  policiesDir: string;
  /** The policy set `serve` checked, the same for every worker: none reads the folder at its start. */
  policies: Policies;
  overrides: Partial<Settings>;
  index: number;
  workers: number;
  noticeChannel: string;
}

const input = workerData as WorkerInput;
const port = parentPort!;
let pending = 0;
const waiting = new Map<number, (text: string) => void>();
const fannedOut = new Map<number, (results: AdminResult[]) => void>();
const locked = new Map<number, () => void>();

// [bidId, won (1, 0, -1: not said), min-to-win USD (NaN: none)] per notice told this turn.
const channel = new BroadcastChannel(input.noticeChannel);
channel.unref();
let told: Array<string | number> | null = null;
const noticePeers = {
  // The fleet's peers (src/fleet/peers.ts) leave to this channel what this process's workers tell each other.
  group: input.noticeChannel,
  tell(bidId: string, won?: boolean, mtwUsd?: number) {
    if (told === null) {
      told = [];
      setImmediate(() => {
        channel.postMessage(told);
        told = null;
      });
    }
    told.push(bidId, won === undefined ? -1 : won ? 1 : 0, mtwUsd ?? NaN);
  },
};

// Said by the main thread once every worker listens ('serving'): until then /readyz answers 503.
let allStarted!: () => void;
const started = new Promise<void>((resolve) => (allStarted = resolve));

const bidder = await createBidder({
  policiesDir: input.policiesDir,
  // A structured clone, no longer frozen.
  policies: freezePolicies(input.policies),
  allStarted: started,
  // The main thread watches models/CURRENT for all: each worker polling it swapped on its own, up
  // to a poll apart and outside the admin lock (review "reload": ~600 ms apart).
  watchModels: false,
  overrides: input.overrides,
  workerIndex: input.index,
  workers: input.workers,
  noticePeers,
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

channel.onmessage = (e) => {
  const b = (e as MessageEvent).data as Array<string | number>;
  for (let i = 0; i + 2 < b.length; i += 3) {
    const won = b[i + 1] as number;
    const mtw = b[i + 2] as number;
    bidder.noticeFromPeer(b[i] as string, won < 0 ? undefined : won === 1, Number.isNaN(mtw) ? undefined : mtw);
  }
};

port.on('message', async (m: { type: string; id?: number; text?: string; action?: AdminAction; results?: AdminResult[]; signal?: string; ledger?: boolean }) => {
  if (m.type === 'metrics') port.postMessage({ type: 'metrics', id: m.id, json: await bidder.metricsJson(m.ledger !== false) });
  else if (m.type === 'reload') await bidder.reloadPoliciesOnSignal(m.signal!);
  else if (m.type === 'modelChanged') await bidder.reloadModelOnChange();
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
  } else if (m.type === 'serving') allStarted();
  else if (m.type === 'stop') await stop();
});

let stopping = false;
/**
 * Drains, closes every connection, writes the shutdown state (event log, learned paces, journal),
 * says 'stopped' and lets the thread end, once however often it is asked.
 */
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  let failed: string | undefined;
  await bidder.close().catch((err: Error) => {
    bidder.logger.error({ err }, 'shutdown failed');
    failed = err.message;
  });
  channel.close();
  port.postMessage({ type: 'stopped', failed });
  // Nothing is left on this thread's loop: it ends by itself, and the main thread sees its exit.
  port.close();
}

// Left to Node, an uncaught error ended this thread with its uWebSockets.js sockets open, and Node
// aborted the whole process (`uv_loop_close() while having open handles`, exit 134): every worker
// gone, the error never logged, no state written. A capture, not an 'uncaughtException' listener:
// the wasm backend's Emscripten runtime listens for it and throws the error again, which is fatal
// whatever other listeners do (its 'unhandledRejection' listener throws too, and lands here). A
// second error while stopping is logged only.
process.setUncaughtExceptionCaptureCallback((err: unknown) => {
  bidder.logger.error({ err, worker: input.index }, 'unhandled error outside a request handler: this worker stops');
  process.exitCode = 1;
  if (stopping) return;
  port.postMessage({ type: 'failing', error: String(err) });
  void stop();
});
port.postMessage({ type: 'listening', port: bidder.port, ready: bidder.ready(), graceMs: bidder.settings.shutdownGraceMs });
