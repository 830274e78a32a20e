/**
 * Model versions on disk: `models/<version>/{model.json, weights.bin, meta.json}` and a plain-text
 * `models/CURRENT` naming the default version. Written without tfjs-node (which cannot install
 * here) through tfjs's in-memory save/load handlers. A version folder is written under a temporary
 * name and renamed into place, so a reader (the bidder's file watch) never sees half a model.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, basename, resolve } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import * as tf from '@tensorflow/tfjs';
import { FEATURE_SPEC, type FeatureSpec } from '../features/features.js';
import type { CtrModel } from '../types.js';
import { compileArtifacts, TopologyError, type CompiledModel } from './compile.js';
import { wrapCompiled, wrapLayersModel } from './ctr-model.js';

export type ModelKind = 'lr' | 'dcn';

export interface ModelMeta {
  version: string;
  kind: ModelKind;
  featureSpecHash: string;
  /** ISO time. */
  trainedAt: string;
  /** Where the training rows came from and how many. */
  data: Record<string, unknown>;
  /** Validation and evaluation figures known at save time. */
  metrics: Record<string, unknown>;
  /** The command that produced this version, so it can be reproduced. */
  command?: string;
  /** Model hyper-parameters. */
  params?: Record<string, unknown>;
}

export class ModelLoadError extends Error {
  readonly problems: string[];
  constructor(dir: string, problems: string[]) {
    super(`cannot load model from ${dir} (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  - ${problems.join('\n  - ')}`);
    this.name = 'ModelLoadError';
    this.problems = problems;
  }
}

const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function joinWeights(data: tf.io.WeightData | undefined): ArrayBuffer {
  if (data === undefined) return new ArrayBuffer(0);
  return tf.io.CompositeArrayBuffer.join(data);
}

export async function saveModelVersion(modelsDir: string, model: tf.LayersModel, meta: ModelMeta): Promise<string> {
  if (!VERSION_RE.test(meta.version)) throw new Error(`invalid model version name '${meta.version}'`);
  const dir = join(modelsDir, meta.version);
  if (existsSync(dir)) throw new Error(`model version ${meta.version} already exists in ${modelsDir}; versions are immutable, pick a new name`);
  const tmp = join(modelsDir, `.${meta.version}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weights = joinWeights(artifacts.weightData);
      const modelJson = {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
      };
      writeFileSync(join(tmp, 'model.json'), JSON.stringify(modelJson));
      writeFileSync(join(tmp, 'weights.bin'), Buffer.from(weights));
      return { modelArtifactsInfo: { dateSaved: new Date(meta.trainedAt), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
    }),
  );
  writeFileSync(join(tmp, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
  renameSync(tmp, dir);
  return dir;
}

/** Points `models/CURRENT` at a version (atomic rename, so a watcher reads old or new, never empty). */
export function setCurrentVersion(modelsDir: string, version: string): void {
  if (!existsSync(join(modelsDir, version))) throw new Error(`no model version ${version} in ${modelsDir}`);
  const tmp = join(modelsDir, `.CURRENT.tmp-${process.pid}`);
  writeFileSync(tmp, `${version}\n`);
  renameSync(tmp, join(modelsDir, 'CURRENT'));
}

/**
 * The folder of a model: `ref` may be a folder path, a version name inside `modelsDir`, or
 * 'current'/undefined for the version named by `modelsDir/CURRENT`.
 */
export function resolveModelDir(modelsDir: string, ref?: string): string {
  if (ref !== undefined && ref !== 'current') {
    // A bare name is a version of modelsDir when it has one there; only then, or with a '/', is it a
    // path (the command line's convenience): a folder of the working directory never shadows a version.
    if (ref.includes('/')) return resolve(ref);
    if (!existsSync(join(modelsDir, ref, 'model.json')) && existsSync(join(ref, 'model.json'))) return resolve(ref);
    return resolve(modelsDir, ref);
  }
  const file = join(modelsDir, 'CURRENT');
  if (!existsSync(file)) throw new Error(`${file} does not exist: it must name the default model version`);
  const version = readFileSync(file, 'utf8').trim();
  if (!VERSION_RE.test(version)) throw new Error(`${file} must contain a version name, found '${version}'`);
  return resolve(modelsDir, version);
}

function readJson(path: string, problems: string[]): unknown {
  if (!existsSync(path)) {
    problems.push(`${basename(path)} is missing`);
    return undefined;
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    problems.push(`${basename(path)} is not valid JSON: ${(err as Error).message}`);
    return undefined;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
}

/**
 * Reads and checks every file of a version, reporting all problems at once, before anything
 * touches the tfjs engine. Returns what tfjs needs to build the model.
 */
export function readModelVersion(dir: string, spec: FeatureSpec = FEATURE_SPEC) {
  const problems: string[] = [];
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ModelLoadError(dir, ['the folder does not exist']);
  const modelJson = readJson(join(dir, 'model.json'), problems);
  const meta = readJson(join(dir, 'meta.json'), problems);

  let weightSpecs: WeightSpec[] | undefined;
  if (modelJson !== undefined) {
    if (!isObj(modelJson) || !isObj(modelJson.modelTopology)) problems.push('model.json has no modelTopology object');
    const manifest = isObj(modelJson) ? modelJson.weightsManifest : undefined;
    const groups = Array.isArray(manifest) ? manifest : [];
    const ok =
      groups.length === 1 &&
      isObj(groups[0]) &&
      Array.isArray(groups[0].paths) &&
      groups[0].paths.length === 1 &&
      groups[0].paths[0] === 'weights.bin' &&
      Array.isArray(groups[0].weights) &&
      (groups[0].weights as unknown[]).every(
        (w) => isObj(w) && typeof w.name === 'string' && Array.isArray(w.shape) && (w.dtype === 'float32' || w.dtype === 'int32'),
      );
    if (ok) weightSpecs = (groups[0] as Record<string, unknown>).weights as WeightSpec[];
    else problems.push('model.json weightsManifest must be one group with paths ["weights.bin"] and float32/int32 weight specs');
  }

  let weights: Buffer | undefined;
  const weightsPath = join(dir, 'weights.bin');
  if (!existsSync(weightsPath)) problems.push('weights.bin is missing');
  else {
    weights = readFileSync(weightsPath);
    if (weightSpecs !== undefined) {
      const expected = weightSpecs.reduce((n, w) => n + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
      if (weights.byteLength !== expected) {
        problems.push(`weights.bin has ${weights.byteLength} bytes, model.json describes ${expected}`);
      }
    }
  }

  let version = basename(dir);
  let kind: ModelKind = 'lr';
  if (meta !== undefined) {
    if (!isObj(meta)) problems.push('meta.json must be an object');
    else {
      if (typeof meta.version !== 'string' || meta.version === '') problems.push('meta.json: version must be a non-empty string');
      else version = meta.version;
      if (meta.kind !== 'lr' && meta.kind !== 'dcn') problems.push(`meta.json: kind must be 'lr' or 'dcn', found ${JSON.stringify(meta.kind)}`);
      else kind = meta.kind;
      if (typeof meta.featureSpecHash !== 'string') problems.push('meta.json: featureSpecHash must be a string');
      else if (meta.featureSpecHash !== spec.hash) {
        problems.push(`model ${version} was built for feature spec ${meta.featureSpecHash}, this bidder uses ${spec.hash}`);
      }
      if (typeof meta.trainedAt !== 'string' || Number.isNaN(Date.parse(meta.trainedAt))) problems.push('meta.json: trainedAt must be an ISO date');
    }
  }
  if (problems.length > 0) throw new ModelLoadError(dir, problems);
  return {
    meta: meta as ModelMeta,
    version,
    kind,
    modelTopology: (modelJson as Record<string, unknown>).modelTopology as object,
    weightSpecs: weightSpecs as tf.io.WeightsManifestEntry[],
    // A fresh ArrayBuffer: Buffer pools may share theirs with unrelated data.
    weightData: weights!.buffer.slice(weights!.byteOffset, weights!.byteOffset + weights!.byteLength) as ArrayBuffer,
  };
}

export interface LoadModelOptions {
  spec?: FeatureSpec;
}

/**
 * Loads a version folder as a ready CtrModel on the current tfjs backend (see selectBackend).
 * Our architectures are built straight from the saved files (compileArtifacts), without a
 * LayersModel: a serving bidder loads models between requests, and building a LayersModel blocks
 * the event loop for several milliseconds at a stretch. Any other architecture still goes through
 * tf.loadLayersModel.
 */
export async function loadModel(dir: string, opts: LoadModelOptions = {}): Promise<CtrModel & { meta: ModelMeta }> {
  const spec = opts.spec ?? FEATURE_SPEC;
  const art = readModelVersion(dir, spec);
  // Each synchronous step gets its own turn of the event loop.
  await yieldToLoop();
  let compiled: CompiledModel | null;
  try {
    compiled = compileArtifacts(art.modelTopology, art.weightSpecs, art.weightData);
  } catch (err) {
    if (!(err instanceof TopologyError)) throw err;
    throw new ModelLoadError(dir, [`tfjs could not build the model: ${err.message}`]);
  }
  if (compiled !== null) {
    const problems = shapeProblems(compiled.inputShapes, [compiled.outputShape], spec);
    if (problems.length > 0) {
      compiled.dispose();
      throw new ModelLoadError(dir, problems);
    }
    await yieldToLoop();
    return Object.assign(wrapCompiled(compiled, spec, { version: art.version, kind: art.kind }), { meta: art.meta });
  }
  const { layers, meta, version, kind } = await buildLayersModel(dir, art, spec);
  await yieldToLoop();
  return Object.assign(wrapLayersModel(layers, spec, { version, kind }), { meta });
}

function shapeProblems(inputs: (number | null)[][], outputs: (number | null)[][], spec: FeatureSpec): string[] {
  const problems: string[] = [];
  if (inputs.length !== 2 || inputs[0][1] !== spec.sparseFields || inputs[1][1] !== spec.denseDim) {
    problems.push(`model inputs ${JSON.stringify(inputs)} do not match the feature spec ([null,${spec.sparseFields}], [null,${spec.denseDim}])`);
  }
  if (outputs.length !== 1 || outputs[0].length !== 2 || outputs[0][1] !== 1) problems.push('model must have one output of shape [null,1]');
  return problems;
}

/** As loadModel, but returns the raw LayersModel (for training continuation and evaluation). */
export async function loadLayersModel(dir: string, spec: FeatureSpec = FEATURE_SPEC) {
  const art = readModelVersion(dir, spec);
  await yieldToLoop();
  return buildLayersModel(dir, art, spec);
}

async function buildLayersModel(dir: string, art: ReturnType<typeof readModelVersion>, spec: FeatureSpec) {
  let layers: tf.LayersModel;
  try {
    layers = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: art.modelTopology, weightSpecs: art.weightSpecs, weightData: art.weightData }));
  } catch (err) {
    throw new ModelLoadError(dir, [`tfjs could not build the model: ${(err as Error).message}`]);
  }
  const problems = shapeProblems(
    layers.inputs.map((t) => t.shape),
    layers.outputs.map((t) => t.shape),
    spec,
  );
  if (problems.length > 0) {
    layers.dispose();
    throw new ModelLoadError(dir, problems);
  }
  return { layers, meta: art.meta, version: art.version, kind: art.kind };
}
