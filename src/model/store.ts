/**
 * Model versions on disk: `models/<version>/{model.json, weights.bin, meta.json}` and a plain-text
 * `models/CURRENT` naming the default version. Written without tfjs-node (which cannot install
 * here) through tfjs's in-memory save/load handlers. A version folder is written under a temporary
 * name and renamed into place, so a reader (the bidder's file watch) never sees half a model.
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, basename, resolve, sep } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import * as tf from '@tensorflow/tfjs';
import { FEATURE_SPEC, type FeatureSpec } from '../features/features.js';
import type { CtrModel } from '../types.js';
import { compileArtifacts, TopologyError, type CompiledModel } from './compile.js';
import { afterScores, wrapCompiled, wrapLayersModel } from './ctr-model.js';
import { lrWeightsOf, setUnseenRule, unseenProblems, unseenRule, weightsHash, type UnseenStats } from './unseen.js';

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
  /** An LR's scoring of values its training rows never had (src/model/unseen.ts); versions before lr-v5 have none. */
  unseen?: UnseenStats;
}

export class ModelLoadError extends Error {
  readonly problems: string[];
  constructor(dir: string, problems: string[]) {
    super(`cannot load model from ${dir} (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  - ${problems.join('\n  - ')}`);
    this.name = 'ModelLoadError';
    this.problems = problems;
  }
}

/** What stopped a model loading, on one line: a ModelLoadError lists every problem, over several. */
export const whyNotLoaded = (err: unknown): string => (err instanceof ModelLoadError ? err.problems.join('; ') : (err as Error).message);

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
  // The file being written, named where its write fails.
  let file = tmp;
  const write = (name: string, data: string | Buffer) => writeFileSync((file = join(tmp, name)), data);
  try {
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
        write('model.json', JSON.stringify(modelJson));
        write('weights.bin', Buffer.from(weights));
        return { modelArtifactsInfo: { dateSaved: new Date(meta.trainedAt), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
      }),
    );
    // An unseen rule's seen ids one field a line: a few thousand of them, one a line, would bury the rest.
    const text = JSON.stringify(meta, (k, v) => (k === 'seen' && Array.isArray(v) ? `@@${JSON.stringify(v)}@@` : v), 2).replace(/"@@(\[[^"]*\])@@"/g, '$1');
    write('meta.json', `${text}\n`);
    file = tmp;
    renameSync(tmp, dir);
  } catch (err) {
    // A full disk left the half-written folder (weights and all) under a name no later save reuses.
    rmSync(tmp, { recursive: true, force: true });
    throw Object.assign(new Error(`model version ${meta.version} not saved in ${modelsDir}: ${file} (${(err as Error).message}); nothing saved`, { cause: err }), { code: (err as NodeJS.ErrnoException).code });
  }
  return dir;
}

/** Points `models/CURRENT` at a version (atomic rename, so a watcher reads old or new, never empty). */
export function setCurrentVersion(modelsDir: string, version: string): void {
  if (!existsSync(join(modelsDir, version))) throw new Error(`no model version ${version} in ${modelsDir}`);
  const tmp = join(modelsDir, `.CURRENT.tmp-${process.pid}`);
  try {
    writeFileSync(tmp, `${version}\n`);
    renameSync(tmp, join(modelsDir, 'CURRENT'));
  } catch (err) {
    rmSync(tmp, { force: true });
    throw Object.assign(new Error(`${join(modelsDir, 'CURRENT')} not written (${(err as Error).message}): it is left as it was`, { cause: err }), { code: (err as NodeJS.ErrnoException).code });
  }
}

/**
 * The folder of a model: `ref` may be a folder path, a version name inside `modelsDir`, or
 * 'current'/undefined for the version named by `modelsDir/CURRENT`. A version name must stay a
 * folder of `modelsDir`: one that is a link out of it is refused (ModelLoadError), as the admin
 * route promises models load only from there; a path is the operator's own choice.
 */
export function resolveModelDir(modelsDir: string, ref?: string): string {
  if (ref !== undefined && ref !== 'current') {
    // A bare name is a version of modelsDir when it has one there; only then, or with a '/', is it a
    // path (the command line's convenience): a folder of the working directory never shadows a version.
    if (ref.includes('/')) return resolve(ref);
    if (!existsSync(join(modelsDir, ref, 'model.json')) && existsSync(join(ref, 'model.json'))) return resolve(ref);
    return versionDir(modelsDir, ref);
  }
  const file = join(modelsDir, 'CURRENT');
  if (!existsSync(file)) throw new ModelLoadError(modelsDir, [`${file} does not exist: it must name the default model version`]);
  const version = readFileSync(file, 'utf8').trim();
  if (!VERSION_RE.test(version)) throw new ModelLoadError(modelsDir, [`${file} must contain one version name, found '${JSON.stringify(version).slice(1, -1)}'`]);
  try {
    statSync(join(modelsDir, version));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelLoadError(modelsDir, [code === 'ENOENT' ? `${file} names version ${version}, which has no folder in ${modelsDir}` : `${file} names version ${version}: ${statFailure(join(modelsDir, version), err)}`]);
  }
  return versionDir(modelsDir, version);
}

function versionDir(modelsDir: string, version: string): string {
  const dir = resolve(modelsDir, version);
  if (existsSync(dir)) {
    const real = realpathSync(dir);
    if (!real.startsWith(realpathSync(modelsDir) + sep)) {
      throw new ModelLoadError(dir, [`${dir} is a link to ${real}, outside ${modelsDir}: versions load only from the models folder`]);
    }
  }
  return dir;
}

/** model.json and meta.json of our models are a few KB: anything this large is not one. */
const MAX_JSON_BYTES = 16 << 20;
/**
 * The shipped DCN's weights are 1.1 MB. Checked on the file's size before it is read: a reload
 * reads on the serving process, and the wasm backend holds the weights in its own 4 GB heap.
 */
const MAX_WEIGHTS_BYTES = 512 << 20;
/** Weight values scanned for NaN and ±Infinity between two turns of the event loop. */
const SCAN_CHUNK = 1 << 22;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
}

/** What tfjs needs to build a version, once its files passed every check. */
export interface ModelArtifacts {
  meta: ModelMeta;
  version: string;
  kind: ModelKind;
  modelTopology: object;
  weightSpecs: tf.io.WeightsManifestEntry[];
  weightData: ArrayBuffer;
}

/**
 * Why a path cannot be looked at, from its stat error: missing, a loop of symbolic links (which
 * a bare catch reported as missing, though a link of that name is there to be fixed), or whatever
 * else the system says.
 */
function statFailure(name: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return `${name} is missing`;
  if (code === 'ELOOP') return `${name} is a loop of symbolic links (ELOOP): following them never reaches a file`;
  // The system's message names the path.
  return `${name} cannot be read: ${(err as Error).message}`;
}

/** A file's size, or why it cannot be read: missing, a link loop, not a file, or over `max` bytes. */
function sizeOf(dir: string, name: string, max: number, problems: string[]): number | undefined {
  const path = join(dir, name);
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    problems.push(statFailure(name, err));
    return undefined;
  }
  if (!st.isFile()) problems.push(`${name} is not a file (${path})`);
  else if (st.size > max) problems.push(`${name} has ${st.size} bytes, more than the ${max} a ${name === 'weights.bin' ? 'model' : name} may have`);
  else return st.size;
  return undefined;
}

/** A JSON file's value; a leading UTF-8 byte order mark (Windows editors write one) is skipped, as bidder.yaml's and CURRENT's are. */
function parseJson(name: string, bytes: Buffer, problems: string[]): unknown {
  try {
    return JSON.parse(bytes.toString('utf8').replace(/^\uFEFF/, ''));
  } catch (err) {
    problems.push(`${name} is not valid JSON: ${(err as Error).message}`);
    return undefined;
  }
}

/** The weight specs of a model.json, each shape checked, or undefined with the problems said. */
function manifestOf(modelJson: unknown, problems: string[]): WeightSpec[] | undefined {
  if (!isObj(modelJson) || !isObj(modelJson.modelTopology)) problems.push('model.json has no modelTopology object');
  const manifest = isObj(modelJson) ? modelJson.weightsManifest : undefined;
  const group = Array.isArray(manifest) && manifest.length === 1 ? manifest[0] : undefined;
  const weights = isObj(group) && Array.isArray(group.paths) && group.paths.length === 1 && group.paths[0] === 'weights.bin' ? group.weights : undefined;
  if (!Array.isArray(weights) || !weights.every((w) => isObj(w) && typeof w.name === 'string' && Array.isArray(w.shape) && (w.dtype === 'float32' || w.dtype === 'int32'))) {
    problems.push('model.json weightsManifest must be one group with paths ["weights.bin"] and float32/int32 weight specs');
    return undefined;
  }
  let ok = true;
  for (const w of weights as WeightSpec[]) {
    if (w.shape.every((d) => Number.isInteger(d) && d >= 0)) continue;
    problems.push(`model.json: weight ${w.name} has shape ${JSON.stringify(w.shape)}: its dimensions must be non-negative integers`);
    ok = false;
  }
  return ok ? (weights as WeightSpec[]) : undefined;
}

/**
 * What the feature spec requires of a topology, read from model.json so that it is said along
 * with every other problem: inputs of [null, sparseFields] ids and [null, denseDim] values, and
 * embedding tables exactly as large as the hash space the ids come from. A smaller one loads, then
 * fails every batch with an id out of range; rows past the hash space are never read, and only
 * cost the load (a 100,000,000-row table is a 400 MB weights.bin under the size cap, read and
 * scanned on the serving process for nothing): `oversized`, and its weights are not read.
 */
function specProblems(topology: Record<string, unknown>, spec: FeatureSpec): { problems: string[]; oversized: boolean } {
  const cfg = isObj(topology.config) ? topology.config : undefined;
  if (!cfg || !Array.isArray(cfg.layers)) return { problems: [], oversized: false };
  const layers = (cfg.layers as unknown[]).filter(isObj);
  const problems: string[] = [];
  if (Array.isArray(cfg.input_layers)) {
    const inputs = (cfg.input_layers as unknown[]).map((ref) => {
      const l = Array.isArray(ref) ? layers.find((x) => x.name === ref[0]) : undefined;
      return isObj(l?.config) ? l.config.batch_input_shape : undefined;
    });
    const fits = (s: unknown, n: number) => Array.isArray(s) && s.length === 2 && s[0] === null && s[1] === n;
    if (inputs.length !== 2 || !fits(inputs[0], spec.sparseFields) || !fits(inputs[1], spec.denseDim)) {
      problems.push(`model inputs ${JSON.stringify(inputs)} do not match the feature spec ([null,${spec.sparseFields}], [null,${spec.denseDim}])`);
    }
  }
  let oversized = false;
  for (const l of layers) {
    const rows = isObj(l.config) ? l.config.input_dim : undefined;
    if (l.class_name === 'Embedding' && Number.isInteger(rows) && rows !== spec.hashBuckets) {
      const more = (rows as number) > spec.hashBuckets;
      oversized ||= more;
      problems.push(`layer ${l.name}: the embedding table has ${rows} rows, the feature spec hashes ids into ${spec.hashBuckets}${more ? ': rows past it are never read' : ''}`);
    }
  }
  return { problems, oversized };
}

/**
 * Every file of a version checked, all problems collected: sizes before any read, then
 * model.json's manifest, weights.bin against it (read only when its size matches and its embedding
 * tables are no larger than the hash space), meta.json and the feature spec. A generator yielding the paths it reads, so that one implementation serves
 * the synchronous reader (readModelVersion) and the serving process's asynchronous one
 * (loadModel), whose reads leave the event loop free. A driver hands back the read's error, not
 * throws it: a file that stats but cannot be read (no read permission) is one problem among the
 * others, not the only one said.
 */
function* inspect(dir: string, spec: FeatureSpec): Generator<string, { problems: string[]; art: Partial<ModelArtifacts> & { expectedBytes?: number } }, Buffer | Error | undefined> {
  const problems: string[] = [];
  const bytes = (name: string, got: Buffer | Error | undefined): Buffer | undefined => {
    if (!(got instanceof Error)) return got;
    problems.push(statFailure(name, got));
    return undefined;
  };
  const jsonSize = sizeOf(dir, 'model.json', MAX_JSON_BYTES, problems);
  const modelBytes = jsonSize === undefined ? undefined : bytes('model.json', yield join(dir, 'model.json'));
  const modelJson = modelBytes === undefined ? undefined : parseJson('model.json', modelBytes, problems);
  const metaSize = sizeOf(dir, 'meta.json', MAX_JSON_BYTES, problems);
  const metaBytes = metaSize === undefined ? undefined : bytes('meta.json', yield join(dir, 'meta.json'));
  const meta = metaBytes === undefined ? undefined : parseJson('meta.json', metaBytes, problems);
  const weightSpecs = modelJson === undefined ? undefined : manifestOf(modelJson, problems);
  const expected = weightSpecs?.reduce((n, w) => n + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
  const modelTopology = isObj(modelJson) && isObj(modelJson.modelTopology) ? modelJson.modelTopology : undefined;
  const fit = modelTopology ? specProblems(modelTopology, spec) : { problems: [], oversized: false };

  const weightsSize = sizeOf(dir, 'weights.bin', MAX_WEIGHTS_BYTES, problems);
  let weights: Buffer | undefined;
  if (weightsSize !== undefined && expected !== undefined) {
    if (weightsSize !== expected) problems.push(`weights.bin has ${weightsSize} bytes, model.json describes ${expected}`);
    else if (!fit.oversized) weights = bytes('weights.bin', yield join(dir, 'weights.bin'));
  }

  const version = basename(dir);
  let kind: ModelKind = 'lr';
  if (meta !== undefined) {
    if (!isObj(meta)) problems.push('meta.json must be an object');
    else {
      if (typeof meta.version !== 'string' || meta.version === '') problems.push('meta.json: version must be a non-empty string');
      if (meta.kind !== 'lr' && meta.kind !== 'dcn') problems.push(`meta.json: kind must be 'lr' or 'dcn', found ${JSON.stringify(meta.kind)}`);
      else kind = meta.kind;
      if (typeof meta.featureSpecHash !== 'string') problems.push('meta.json: featureSpecHash must be a string');
      else if (meta.featureSpecHash !== spec.hash) {
        problems.push(`model ${version} was built for feature spec ${meta.featureSpecHash}, this bidder uses ${spec.hash}`);
      }
      if (typeof meta.trainedAt !== 'string' || Number.isNaN(Date.parse(meta.trainedAt))) problems.push('meta.json: trainedAt must be an ISO date');
    }
  }
  problems.push(...fit.problems);

  const weightData = weights === undefined ? undefined : ownBuffer(weights);
  // No expectedBytes where the weights were left unread for a table's size: loadModel would check
  // the topology against zeros of that size, the 400 MB this saves.
  const expectedBytes = fit.oversized ? undefined : expected;
  return { problems, art: { meta: meta as ModelMeta, version, kind, modelTopology, weightSpecs: weightSpecs as tf.io.WeightsManifestEntry[] | undefined, weightData, expectedBytes } };
}

/**
 * The bytes of a file as read, as an ArrayBuffer of their own. readFile gives a file of known size a
 * buffer of its own (offset 0, the whole ArrayBuffer), which is used as it is: copying a 400 MB
 * weights.bin held the event loop 0.6 s of a reload. Only a small file may come in a slice of
 * Node's shared pool (other data around it, an offset that need not suit a Float32Array view),
 * and only that is copied.
 */
function ownBuffer(b: Buffer): ArrayBuffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) return b.buffer as ArrayBuffer;
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/**
 * Every float32 weight checked for NaN and ±Infinity, pausing (a yield) between chunks of values;
 * returns the problems. Run by loadModel and loadLayersModel alike: a NaN in rows a day's data
 * never reaches let eval score and pass a version the bidder refuses.
 */
function* nonFiniteWeights(specs: readonly WeightSpec[], data: ArrayBuffer): Generator<void, string[]> {
  const problems: string[] = [];
  let offset = 0;
  for (const w of specs) {
    const size = w.shape.reduce((a, b) => a * b, 1);
    if (w.dtype === 'float32') {
      const values = new Float32Array(data, offset, size);
      let bad = 0;
      for (let i = 0; i < size; i += SCAN_CHUNK) {
        for (let j = i, end = Math.min(size, i + SCAN_CHUNK); j < end; j++) if (!Number.isFinite(values[j])) bad++;
        yield;
      }
      if (bad > 0) problems.push(`weight ${w.name} has ${bad} value${bad === 1 ? ' that is' : 's that are'} not finite (NaN or ±Infinity)`);
    }
    offset += 4 * size;
  }
  return problems;
}

/**
 * Reads and checks every file of a version, reporting all problems at once, before anything
 * touches the tfjs engine. Returns what tfjs needs to build the model.
 */
export function readModelVersion(dir: string, spec: FeatureSpec = FEATURE_SPEC): ModelArtifacts {
  checkFolder(dir);
  const it = inspect(dir, spec);
  let step = it.next();
  while (!step.done) step = it.next(readOrError(step.value));
  const { problems, art } = step.value;
  if (problems.length > 0) throw new ModelLoadError(dir, problems);
  return art as ModelArtifacts;
}

/** nonFiniteWeights run to its end, each chunk of values on its own turn of the event loop. */
async function scanWeights(specs: readonly WeightSpec[], data: ArrayBuffer): Promise<string[]> {
  const scan = nonFiniteWeights(specs, data);
  let chunk = scan.next();
  for (; !chunk.done; chunk = scan.next()) await yieldToLoop();
  return chunk.value;
}

function readOrError(path: string): Buffer | Error {
  try {
    return readFileSync(path);
  } catch (err) {
    return err as Error;
  }
}

function checkFolder(dir: string): void {
  let st;
  try {
    st = statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelLoadError(dir, [code === 'ENOENT' ? `model folder ${dir} does not exist` : statFailure(`model folder ${dir}`, err)]);
  }
  if (!st.isDirectory()) throw new ModelLoadError(dir, [`${dir} is not a folder`]);
}

export interface LoadModelOptions {
  spec?: FeatureSpec;
}

/**
 * Loads a version folder as a ready CtrModel on the current tfjs backend (see selectBackend),
 * refusing with one ModelLoadError that lists every problem: the files' (inspect), the weights'
 * numbers (nonFiniteWeights, calibrationProblems), the topology's (compileArtifacts), and, last,
 * scores outside (0, 1) on the warm-up rows.
 *
 * Our architectures are built straight from the saved files (compileArtifacts), without a
 * LayersModel: a serving bidder loads models between requests, and building a LayersModel blocks
 * the event loop for several milliseconds at a stretch. Any other architecture still goes through
 * tf.loadLayersModel.
 */
export async function loadModel(dir: string, opts: LoadModelOptions = {}): Promise<CtrModel & { meta: ModelMeta }> {
  const spec = opts.spec ?? FEATURE_SPEC;
  checkFolder(dir);
  const it = inspect(dir, spec);
  let step = it.next();
  while (!step.done) step = it.next(await readFile(step.value).catch((err: Error) => err));
  const { problems, art } = step.value;
  // A served version answers to its folder's name (the admin reply, CURRENT, the event log's
  // modelVersion): a copy whose meta names another would serve under a name not its own.
  const named = (art.meta as { version?: unknown } | undefined)?.version;
  if (typeof named === 'string' && named !== '' && named !== art.version) problems.push(`meta.json names version ${named}, its folder is ${art.version}: a version is loaded under its own name`);
  if (art.weightSpecs && art.weightData) {
    problems.push(...(await scanWeights(art.weightSpecs as WeightSpec[], art.weightData)));
    if (art.modelTopology) problems.push(...calibrationProblems(art.modelTopology, art.weightSpecs as WeightSpec[], art.weightData, art.meta));
  }

  let compiled: CompiledModel | null = null;
  if (art.modelTopology && art.weightSpecs && art.expectedBytes !== undefined && art.expectedBytes <= MAX_WEIGHTS_BYTES) {
    try {
      // Weights cut short or missing: the topology is still checked, against zeros of the size the manifest describes.
      compiled = compileArtifacts(art.modelTopology, art.weightSpecs, art.weightData ?? new ArrayBuffer(art.expectedBytes));
    } catch (err) {
      if (!(err instanceof TopologyError)) throw err;
      problems.push(...err.problems);
    }
  }
  if (compiled !== null) problems.push(...outputProblems([compiled.outputShape]));
  const unseen = unseenOf(art, spec, problems);
  if (problems.length > 0) {
    compiled?.dispose();
    throw new ModelLoadError(dir, problems);
  }
  await yieldToLoop();
  const full = art as ModelArtifacts;
  const scored =
    compiled !== null
      ? wrapCompiled(compiled, spec, { version: full.version, kind: full.kind })
      : wrapLayersModel((await buildLayersModel(dir, full)).layers, spec, { version: full.version, kind: full.kind });
  const model = unseen
    ? afterScores(scored, (sparse, scores, rows) => {
        unseen.rule(sparse, scores, rows, unseen.slope);
        return scores;
      })
    : scored;
  const wrong = await warmUp(model, spec);
  if (wrong.length > 0) {
    model.dispose();
    throw new ModelLoadError(dir, wrong);
  }
  return Object.assign(model, { meta: full.meta });
}

/**
 * The Platt step of our architectures, a 'calibration' Dense(1, sigmoid) over the logit:
 * pCTR = σ(a·logit + b), fitted by `train` and `calibrate` on held-out rows and recorded in
 * meta.json (metrics.calibration) beside the figures it gave there. Nothing else shows it broken:
 * lr-v3 with its a negated (0.978 → −0.978) gave only probabilities, loaded, and bid a 3-imp
 * request at the campaign caps (25/30/25 against 12.9/30/12.9; eval AUC 0.23, ECE 0.93).
 *
 * Refused: weights.bin holding another (a, b) than the recorded fit, a model neither the training
 * CTR nor the figures of its meta.json describe; a slope at or under 0 is named then. Not refused:
 * such a slope that is the recorded fit. The fit returns one where a weakly trained model's logit
 * ranks the held-out rows backwards (`train` on 12,000 simulated rows, one epoch: −1.15), and there
 * it is what makes the pCTRs rise with the clicks; that model is for its figures to judge (train
 * sets them beside CURRENT's). A version whose meta.json records no fit (not made by train or
 * calibrate) is not checked: its (a, b) has nothing to be compared with.
 *
 * The level is checked so rather than as the warm-up rows' mean pCTR against the training CTR
 * (meta.json's data.clicks / data.rows): those rows are synthetic (ids over the whole hash space,
 * dense values in [0, 1) where a real row has a bias of 1 and signed text weights), and healthy
 * versions score them nowhere near that CTR (lr-v3 0.76 against 0.020, dcn-v2 0.12 against 0.022,
 * lr-v3-ipinyou 0.20 against 0.0014): a bound on their mean would refuse every shipped version.
 */
function calibrationProblems(topology: object, specs: readonly WeightSpec[], data: ArrayBuffer, meta: ModelMeta | undefined): string[] {
  const fit = meta !== undefined && isObj(meta) && isObj(meta.metrics) ? meta.metrics.calibration : undefined;
  if (meta === undefined || !Array.isArray(fit) || fit.length !== 2 || !fit.every((x) => typeof x === 'number' && Number.isFinite(x))) return [];
  const cfg = (topology as Record<string, unknown>).config;
  const layer = isObj(cfg) && Array.isArray(cfg.layers) ? (cfg.layers as unknown[]).filter(isObj).find((l) => l.name === 'calibration' && l.class_name === 'Dense') : undefined;
  if (!isObj(layer?.config) || layer.config.activation !== 'sigmoid') return [];
  const value = (name: string, shape: string) => {
    let offset = 0;
    for (const w of specs) {
      if (w.name === name) return w.dtype === 'float32' && JSON.stringify(w.shape) === shape ? new Float32Array(data, offset, 1)[0] : undefined;
      offset += 4 * w.shape.reduce((x, y) => x * y, 1);
    }
    return undefined;
  };
  const a = value('calibration/kernel', '[1,1]');
  const b = value('calibration/bias', '[1]');
  // A NaN or infinite one is said by nonFiniteWeights; weights of other shapes by the topology check.
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b)) return [];
  const [fa, fb] = fit as [number, number];
  // meta.json keeps the fit's float64, weights.bin its float32.
  const same = (w: number, m: number) => Math.abs(w - Math.fround(m)) <= 1e-6 * Math.max(1, Math.abs(m));
  if (same(a, fa) && same(b, fb)) return [];
  const sign = a <= 0 && fa > 0 ? 'its slope at or under 0 gives the likeliest clicks the lowest pCTRs, and ' : '';
  return [
    `the calibration in weights.bin (a ${a}, b ${b}) is not the Platt fit meta.json records (a ${fa}, b ${fb}): ${sign}neither the training CTR (${trainingCtr(meta)}) nor the figures of meta.json describe its pCTRs; refit it with bidder calibrate`,
  ];
}

/** meta.json's clicks per row, as words. */
function trainingCtr(meta: ModelMeta): string {
  const { clicks, rows } = meta.data ?? {};
  return typeof clicks === 'number' && typeof rows === 'number' && rows > 0 ? `${clicks} clicks in ${rows} rows, ${(clicks / rows).toPrecision(3)}` : 'not recorded';
}

const WARM_ROWS = 64;

/**
 * Warm-up rows unlike an all-zero row, which reads one embedding row and no dense weight: ids
 * spread over the whole hash space (a row of its last id, a row of 0, the absent value) and dense
 * values spread over [0, 1), so an output layer that is no probability shows on them.
 */
function warmUpRows(spec: FeatureSpec): { sparse: Int32Array; dense: Float32Array } {
  const golden = (i: number) => (i * 0.6180339887498949) % 1;
  const sparse = new Int32Array(WARM_ROWS * spec.sparseFields).map((_, i) => Math.floor(golden(i + 1) * spec.hashBuckets));
  sparse.fill(spec.hashBuckets - 1, 0, spec.sparseFields);
  sparse.fill(0, spec.sparseFields, 2 * spec.sparseFields);
  const dense = new Float32Array(WARM_ROWS * spec.denseDim).map((_, i) => golden(i + 0.5));
  return { sparse, dense };
}

/**
 * A fresh model's first calls set up tfjs kernels (tens to hundreds of ms): paid here, not inside
 * the deadline of the first bid requests, nor in the batcher's cost estimate. Each call's scores
 * must be probabilities strictly inside (0, 1): a sigmoid output saturated to 0 or 1 on ordinary
 * rows is as broken as a NaN. Returns the problems.
 */
async function warmUp(model: CtrModel, spec: FeatureSpec): Promise<string[]> {
  const { sparse, dense } = warmUpRows(spec);
  for (let i = 0; i < 3; i++) {
    let scores: Float32Array;
    try {
      scores = model.predictAsync ? await model.predictAsync(sparse, dense, WARM_ROWS) : model.predict(sparse, dense, WARM_ROWS);
    } catch (err) {
      return [`scoring the warm-up rows failed: ${(err as Error).message}`];
    }
    const outside = scores.filter((p) => !(p > 0 && p < 1));
    if (outside.length > 0) return [`the model gives a pCTR outside (0, 1) on ${outside.length} of ${WARM_ROWS} warm-up rows (${outside[0]} first): its output must be a probability`];
    await yieldToLoop();
  }
  return [];
}

function outputProblems(outputs: (number | null)[][]): string[] {
  return outputs.length !== 1 || outputs[0].length !== 2 || outputs[0][1] !== 1 ? ['model must have one output of shape [null,1]'] : [];
}

/**
 * As loadModel, but returns the raw LayersModel (for training continuation and evaluation). A
 * version's unseen-value rule goes with the LayersModel to predictRows, the slope read at each
 * call: calibrate refits it on the loaded model.
 */
export async function loadLayersModel(dir: string, spec: FeatureSpec = FEATURE_SPEC) {
  const art = readModelVersion(dir, spec);
  const problems = await scanWeights(art.weightSpecs as WeightSpec[], art.weightData);
  const unseen = unseenOf(art, spec, problems);
  if (problems.length > 0) throw new ModelLoadError(dir, problems);
  const built = await buildLayersModel(dir, art);
  if (unseen) {
    const calibration = built.layers.getLayer('calibration');
    setUnseenRule(built.layers, (sparse, scores, rows) => unseen.rule(sparse, scores, rows, calibration.getWeights()[0].dataSync()[0]));
  }
  return built;
}

/**
 * meta.json's `unseen` as a rule over the version's weights, or undefined without one; what stops
 * it goes to `problems` (a rule that cannot be applied would serve the version without it).
 */
function unseenOf(art: Partial<ModelArtifacts>, spec: FeatureSpec, problems: string[]) {
  const stats = isObj(art.meta) ? (art.meta as ModelMeta).unseen : undefined;
  if (stats === undefined) return undefined;
  const wrong = unseenProblems(stats, spec);
  const weights = art.weightSpecs && art.weightData ? lrWeightsOf(art.weightSpecs, art.weightData) : undefined;
  if (art.weightData && (weights === undefined || weights.table.length !== spec.hashBuckets || weights.kernel.length < spec.sparseFields)) {
    wrong.push('meta.json: unseen is a rule for a logistic regression (weights/embeddings, logit/kernel, calibration/kernel), which this model is not');
  } else if (wrong.length === 0 && weights !== undefined) {
    // Statistics taken over other weights load and serve without this (lr-v3's with lr-v5's did).
    const hash = weightsHash(weights);
    if (hash !== stats.weights) wrong.push(`meta.json: unseen was taken over other weights (${stats.weights.slice(0, 12)}…) than weights.bin's (${hash.slice(0, 12)}…): its means and seen ids describe nothing of these; regenerate it with scripts/unseen-stats.mjs`);
  }
  problems.push(...wrong);
  return wrong.length > 0 || weights === undefined ? undefined : { rule: unseenRule(stats, spec, weights), slope: weights.slope };
}

async function buildLayersModel(dir: string, art: ModelArtifacts) {
  let layers: tf.LayersModel;
  try {
    layers = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: art.modelTopology, weightSpecs: art.weightSpecs, weightData: art.weightData }));
  } catch (err) {
    throw new ModelLoadError(dir, [`tfjs could not build the model: ${(err as Error).message}`]);
  }
  const problems = outputProblems(layers.outputs.map((t) => t.shape));
  if (problems.length > 0) {
    layers.dispose();
    throw new ModelLoadError(dir, problems);
  }
  return { layers, meta: art.meta, version: art.version, kind: art.kind };
}
