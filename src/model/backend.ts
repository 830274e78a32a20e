/**
 * TensorFlow.js backend selection. tfjs keeps one engine per process, so the backend is a process
 * choice made once at start-up (by the bidder, `train`, `eval`, the bench) and reported.
 */
import * as tf from '@tensorflow/tfjs';
import { installSegmentSum } from './kernels.js';

export const BACKEND_NAMES = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export interface BackendChoice {
  backend: string;
  notes: string[];
}

// Named through a variable so TypeScript does not require these optional packages to be installed.
const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

async function tryNative(notes: string[]): Promise<boolean> {
  for (const pkg of NATIVE_PACKAGES) {
    try {
      await import(pkg);
      if (await tf.setBackend('tensorflow')) {
        notes.push(`using ${pkg} (libtensorflow)`);
        return true;
      }
      notes.push(`${pkg} loaded but the 'tensorflow' backend did not initialise`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      notes.push(
        code === 'ERR_MODULE_NOT_FOUND'
          ? `${pkg} is not installed (its install step downloads libtensorflow, which needs the internet)`
          : `${pkg} failed to load: ${(err as Error).message.split('\n')[0]}`,
      );
    }
  }
  return false;
}

async function tryWasm(notes: string[]): Promise<boolean> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    if (await tf.setBackend('wasm')) return true;
    notes.push("the 'wasm' backend did not initialise");
  } catch (err) {
    notes.push(`@tensorflow/tfjs-backend-wasm failed to load: ${(err as Error).message.split('\n')[0]}`);
  }
  return false;
}

// Named through variables, like the native packages: optional, and absent from this repository's install.
const WEBGPU_BACKEND = '@tensorflow/tfjs-backend-webgpu';
const WEBGPU_NODE = 'webgpu';

/**
 * WebGPU in Node: `@tensorflow/tfjs-backend-webgpu` over the `webgpu` package (Dawn, whose native
 * binary ships inside the npm package), which provides `navigator.gpu`. Only when asked for
 * (`--backend webgpu`): `auto` never picks it, so a machine without a GPU runs as before.
 */
async function tryWebgpu(notes: string[]): Promise<boolean> {
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (!g.navigator?.gpu) {
    try {
      const dawn = (await import(WEBGPU_NODE)) as { create?: (flags: string[]) => unknown; globals?: object };
      if (dawn.globals) Object.assign(globalThis, dawn.globals);
      const gpu = dawn.create?.([]);
      if (gpu) Object.defineProperty(globalThis, 'navigator', { value: { ...(g.navigator ?? {}), gpu }, configurable: true, writable: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      notes.push(code === 'ERR_MODULE_NOT_FOUND' ? `the '${WEBGPU_NODE}' package (WebGPU for Node) is not installed` : `'${WEBGPU_NODE}' failed to load: ${(err as Error).message.split('\n')[0]}`);
      return false;
    }
  }
  const gpu = (globalThis as { navigator?: { gpu?: { requestAdapter(): Promise<unknown> } } }).navigator?.gpu;
  if (!gpu || !(await gpu.requestAdapter().catch(() => null))) {
    notes.push('no WebGPU adapter: this machine has no usable GPU');
    return false;
  }
  try {
    await import(WEBGPU_BACKEND);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    notes.push(code === 'ERR_MODULE_NOT_FOUND' ? `${WEBGPU_BACKEND} is not installed` : `${WEBGPU_BACKEND} failed to load: ${(err as Error).message.split('\n')[0]}`);
    return false;
  }
  if (await tf.setBackend('webgpu')) return true;
  notes.push("the 'webgpu' backend did not initialise");
  return false;
}

/**
 * Picks the fastest backend that loads: tensorflow (tfjs-node-gpu, then tfjs-node), else wasm,
 * else cpu. A requested backend that cannot load throws, with the reasons, rather than silently
 * running slower than the operator asked for.
 */
export async function selectBackend(requested?: BackendName): Promise<BackendChoice> {
  const notes: string[] = [];
  // A misspelt name (from a flag) is a mistake to say, not a request for whatever loads.
  if (requested !== undefined && !BACKEND_NAMES.includes(requested)) throw new Error(`backend '${requested}' is not one of auto, ${BACKEND_NAMES.join(', ')}`);
  let ok = false;
  if (requested === 'tensorflow') ok = await tryNative(notes);
  else if (requested === 'wasm') ok = await tryWasm(notes);
  else if (requested === 'webgpu') ok = await tryWebgpu(notes);
  else if (requested === 'cpu') ok = await tf.setBackend('cpu');
  else {
    ok = (await tryNative(notes)) || (await tryWasm(notes)) || (await tf.setBackend('cpu'));
    if (ok && tf.getBackend() !== 'tensorflow') notes.push(`running on ${tf.getBackend()}`);
  }
  if (!ok) {
    throw new Error(`backend '${requested ?? 'any'}' is not available: ${notes.join('; ') || 'it did not initialise'}`);
  }
  await tf.ready();
  // libtensorflow has a native one; wasm has none and cpu's is unusable at our hash-space size.
  if (tf.getBackend() !== 'tensorflow') installSegmentSum(tf.getBackend());
  return { backend: tf.getBackend(), notes };
}
