import * as tf from '@tensorflow/tfjs';

/** Scores `rows` rows from the model inputs as typed arrays (row-major, in input order). */
export type Run = (feeds: ReadonlyArray<Int32Array | Float32Array>, rows: number) => tf.Tensor;

/** The same scores computed in JS, without the backend: `rows` × the output's units, row-major. */
export type Scores = (feeds: ReadonlyArray<Int32Array | Float32Array>, rows: number) => Float32Array;

/** A model as ops: `run` through tfjs always, `scores` in JS where the model is small enough (denseChain). */
export interface CompiledOps {
  run: Run;
  scores: Scores | null;
}

/** One weight of a layer: its values as a typed array (read in JS) or as a tensor (for ops). */
interface Weight {
  shape: number[];
  values(): Float32Array;
  tensor(): tf.Tensor;
}

/** A layer as the op list needs it, from a LayersModel or straight from model.json. */
interface LayerDef {
  name: string;
  className: string;
  inputs: string[];
  config: Record<string, unknown>;
  weights: Weight[];
}

interface Node {
  name: string;
  op: (xs: tf.Tensor[]) => tf.Tensor;
}

/** The scoring function of a model built without a LayersModel, and what it holds. */
export interface CompiledModel extends CompiledOps {
  /** Shapes of the inputs as model.json declares them (null for the batch dimension). */
  inputShapes: (number | null)[][];
  /** Shape of the single output. */
  outputShape: (number | null)[];
  /** Frees the tensors created for the weights. */
  dispose(): void;
}

/** Layer classes the op list knows; any other makes both builders return null (score through tfjs). */
const KNOWN = new Set(['InputLayer', 'Embedding', 'Flatten', 'Concatenate', 'Dense', 'Multiply', 'Add', 'Dropout']);

function layerOp(l: LayerDef): Node['op'] | null {
  switch (l.className) {
    case 'Embedding': {
      // The lookup is done in JS: the wasm GatherV2 kernel costs ~0.3 us per id, which was most of
      // a DCN's scoring time (1.8 ms of ~2.5 ms per 256 rows); copying rows out of a typed array
      // costs a few nanoseconds each. An element loop, not `set(subarray())`: a view per id was
      // the largest self-time line of a bid in a CPU profile.
      const table = l.weights[0].values();
      const [buckets, dim] = l.weights[0].shape;
      return ([x]) => {
        const ids = x.dataSync();
        const out = new Float32Array(ids.length * dim);
        for (let i = 0, o = 0; i < ids.length; i++) {
          const id = ids[i];
          if (!(id >= 0 && id < buckets)) throw new Error(`embedding ${l.name}: id ${id} outside [0, ${buckets})`);
          for (let j = id * dim, end = j + dim; j < end; j++) out[o++] = table[j];
        }
        return tf.tensor(out, [...x.shape, dim], 'float32');
      };
    }
    case 'Flatten':
      return ([x]) => tf.reshape(x, [x.shape[0], -1]);
    case 'Concatenate': {
      const axis = (l.config.axis as number) ?? -1;
      return (xs) => tf.concat(xs, axis);
    }
    case 'Dense': {
      const activation = (l.config.activation as string) ?? 'linear';
      if (!['linear', 'relu', 'sigmoid'].includes(activation)) return null;
      const kernel = l.weights[0].tensor() as tf.Tensor2D;
      const bias = l.weights[1]?.tensor() as tf.Tensor1D | undefined;
      return ([x]) => tf.fused.matMul({ a: x as tf.Tensor2D, b: kernel, bias, activation: activation as 'linear' | 'relu' | 'sigmoid' });
    }
    case 'Multiply':
      return (xs) => xs.reduce((a, b) => tf.mul(a, b));
    case 'Add':
      return (xs) => (xs.length === 2 ? tf.add(xs[0], xs[1]) : tf.addN(xs));
    case 'Dropout':
      return ([x]) => x;
    default:
      return null;
  }
}

/** One part of a fused concatenation: a model input as is, or the embedding rows of an id input. */
type ConcatPart = { input: number; table?: undefined } | { input: number; table: Float32Array; buckets: number; dim: number; layer: string };

/**
 * Embedding → Flatten → Concatenate with model inputs is how both of our architectures build their
 * first dense row. As tfjs ops that is an id tensor, its copy back to JS, an embedding tensor, a
 * reshape, a dense tensor and a concat: six trips through the engine at ~25 µs each, every batch,
 * whatever its size. Fused, the concatenated rows are written straight from the caller's id and
 * dense arrays and enter the backend as one tensor.
 */
function findFusion(inputNames: string[], layers: LayerDef[]): { concat: LayerDef; parts: ConcatPart[]; skip: Set<string> } | null {
  const byName = new Map(layers.map((l) => [l.name, l]));
  const uses = new Map<string, number>();
  for (const l of layers) for (const i of l.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
  for (const concat of layers) {
    if (concat.className !== 'Concatenate' || ((concat.config.axis as number) ?? -1) !== -1) continue;
    const parts: ConcatPart[] = [];
    const skip = new Set<string>();
    for (const name of concat.inputs) {
      const input = inputNames.indexOf(name);
      if (input >= 0) {
        parts.push({ input });
        continue;
      }
      const flatten = byName.get(name);
      const embedding = flatten && byName.get(flatten.inputs[0]);
      const ids = embedding ? inputNames.indexOf(embedding.inputs[0]) : -1;
      if (flatten?.className !== 'Flatten' || embedding?.className !== 'Embedding' || ids < 0) break;
      if (uses.get(flatten.name) !== 1 || uses.get(embedding.name) !== 1) break;
      const [buckets, dim] = embedding.weights[0].shape;
      parts.push({ input: ids, table: embedding.weights[0].values(), buckets, dim, layer: embedding.name });
      skip.add(flatten.name).add(embedding.name);
    }
    if (parts.length === concat.inputs.length && skip.size > 0) return { concat, parts, skip: skip.add(concat.name) };
  }
  return null;
}

/**
 * The rows are built in a scratch array kept between calls (a 190-row DCN batch is ~75 KB, a
 * tenth of what a bid request allocates in all): the backend copies a new tensor's values on
 * creation (wasm), or holds them only until the call's tidy disposes the tensor (cpu).
 */
function concatRows(parts: ConcatPart[], feeds: ReadonlyArray<Int32Array | Float32Array>, rows: number, scratch: { buf: Float32Array; width: number }): tf.Tensor2D {
  let width = 0;
  for (const p of parts) width += (feeds[p.input].length / rows) * (p.table ? p.dim : 1);
  if (scratch.buf.length < rows * width) scratch.buf = new Float32Array(rows * width);
  scratch.width = width;
  const x = scratch.buf;
  let col = 0;
  for (const p of parts) {
    const src = feeds[p.input];
    const per = src.length / rows;
    // One loop per element type, each in its own function: a loop reading both an Int32Array and a
    // Float32Array through one variable is a polymorphic load per element (a third of the time).
    if (p.table === undefined) copyColumns(src instanceof Float32Array ? src : Float32Array.from(src), x, rows, per, width, col);
    else if (src instanceof Int32Array) gatherEmbeddings(p, src, x, rows, per, width, col);
    else throw new Error(`embedding ${p.layer}: ids must be an Int32Array`);
    col += per * (p.table ? p.dim : 1);
  }
  return tf.tensor2d(x.subarray(0, rows * width), [rows, width], 'float32');
}

function copyColumns(src: Float32Array, x: Float32Array, rows: number, per: number, width: number, col: number): void {
  for (let r = 0; r < rows; r++) for (let k = 0, o = r * width + col, i = r * per; k < per; k++) x[o + k] = src[i + k];
}

function gatherEmbeddings(p: ConcatPart & { table: Float32Array }, ids: Int32Array, x: Float32Array, rows: number, per: number, width: number, col: number): void {
  const { table, buckets, dim } = p;
  for (let r = 0; r < rows; r++) {
    for (let f = 0, o = r * width + col, i = r * per; f < per; f++) {
      const id = ids[i + f];
      // Int32Array elements are integers; only the range needs a check.
      if (!(id >= 0 && id < buckets)) throw new Error(`embedding ${p.layer}: id ${id} outside [0, ${buckets})`);
      for (let j = id * dim, end = j + dim; j < end; j++) x[o++] = table[j];
    }
  }
}

/**
 * Which inputs of a row depend on what. `ctx` fields are the same for every candidate of one imp
 * (the request, the user), `ad` fields the same for every row of one creative; the rest depend on
 * both (user × creative overlaps). Indices into the sparse (input 0) and dense (input 1) feeds.
 */
export interface RowSplit {
  sparse: { ctx: readonly number[]; ad: readonly number[] };
  dense: { ctx: readonly number[]; ad: readonly number[] };
}

/**
 * The first linear Dense over the fused first row x0 (DCN-v2's `V·x0`, the logistic regression's
 * logit) is linear, so `W·x0 = W_ctx·x_ctx + W_ad·x_ad + W_pair·x_pair`: the context part is
 * computed once per run of rows with equal context columns (the candidates of one imp are
 * contiguous), the ad part once per creative (cached for the life of the model, so per model
 * version), and only the pair columns per candidate. A part is reused only when the inputs it
 * reads are equal to those it was computed from, so a wrong split costs speed, never a score.
 *
 * Not used when serving (loadModel passes no split): for dcn-v1 on wasm it measured slower, 3.9 to
 * 4.3 µs per row against 3.5 to 3.7 for the whole product (`node bench/split.mjs`). Its first layer
 * is a rank-16 projection, about a tenth of the model's multiply-adds, and XNNPACK does that
 * product faster than JS does the reuse bookkeeping; the MLP after the crosses, most of the cost,
 * is not linear in x0. A model whose first layer dominates (a wide first Dense) is where passing
 * `rowSplit(spec)` would pay; docs/performance-history.md has the figures. The LR, which is nothing
 * but its first layer, is scored in JS whole instead (denseChain): its 58 multiply-adds a row cost
 * less than checking which parts could be reused.
 */
function splitFirstDense(layers: LayerDef[], concat: string, parts: ConcatPart[], split: RowSplit) {
  const dense = layers.find((l) => l.className === 'Dense' && l.inputs.length === 1 && l.inputs[0] === concat && ((l.config.activation as string) ?? 'linear') === 'linear');
  // The layout both our architectures have: x0 = [embeddings of input 0 | input 1].
  const [ids, vals] = parts;
  if (!dense || parts.length !== 2 || ids.table === undefined || ids.input !== 0 || vals.table !== undefined || vals.input !== 1) return null;
  const kernel = dense.weights[0].values();
  const [width, units] = dense.weights[0].shape;
  const bias = dense.weights[1]?.values();
  const dim = ids.dim;
  const without = (n: number, a: readonly number[], b: readonly number[]) => Int32Array.from({ length: n }, (_, i) => i).filter((i) => !a.includes(i) && !b.includes(i));
  const I32 = (a: readonly number[]) => Int32Array.from(a);
  let F = -1;
  let D = -1;
  let cols: { ctxS: Int32Array; ctxD: Int32Array; adS: Int32Array; adD: Int32Array; pairS: Int32Array; pairD: Int32Array } | null = null;
  /** out[o..o+units) += Σ over the x0 columns of these fields (embedding) and dense values, times W. */
  function addPart(x: Float32Array, base: number, fields: Int32Array, dvals: Int32Array, out: Float32Array) {
    for (let k = 0; k < fields.length; k++) {
      for (let j = 0, c = fields[k] * dim; j < dim; j++, c++) {
        const v = x[base + c];
        if (v !== 0) for (let u = 0, w = c * units; u < units; u++) out[u] += v * kernel[w + u];
      }
    }
    for (let k = 0; k < dvals.length; k++) {
      const c = F * dim + dvals[k];
      const v = x[base + c];
      if (v !== 0) for (let u = 0, w = c * units; u < units; u++) out[u] += v * kernel[w + u];
    }
  }
  interface AdEntry {
    ids: Int32Array;
    vals: Float32Array;
    vec: Float32Array;
  }
  const adCache = new Map<number, AdEntry[]>();
  let adCached = 0;
  const ctxVec = new Float32Array(units);
  const pairVec = new Float32Array(units);
  let out = new Float32Array(0);
  return {
    name: dense.name,
    run(feeds: ReadonlyArray<Int32Array | Float32Array>, rows: number, x: Float32Array, xWidth: number): tf.Tensor2D | null {
      const sp = feeds[0] as Int32Array;
      const dn = feeds[1] as Float32Array;
      if (cols === null) {
        F = sp.length / rows;
        D = dn.length / rows;
        if (F * dim + D !== width) return null;
        cols = {
          ctxS: I32(split.sparse.ctx),
          ctxD: I32(split.dense.ctx),
          adS: I32(split.sparse.ad),
          adD: I32(split.dense.ad),
          pairS: without(F, split.sparse.ctx, split.sparse.ad),
          pairD: without(D, split.dense.ctx, split.dense.ad),
        };
      }
      if (xWidth !== width) return null;
      const { ctxS, ctxD, adS, adD, pairS, pairD } = cols;
      if (out.length < rows * units) out = new Float32Array(rows * units);
      for (let r = 0; r < rows; r++) {
        const base = r * width;
        const s = r * F;
        const d = r * D;
        // Context: reused while the context inputs equal the previous row's (one imp's candidates).
        let same = r > 0;
        for (let k = 0; same && k < ctxS.length; k++) same = sp[s + ctxS[k]] === sp[s - F + ctxS[k]];
        for (let k = 0; same && k < ctxD.length; k++) same = dn[d + ctxD[k]] === dn[d - D + ctxD[k]];
        if (!same) {
          for (let u = 0; u < units; u++) ctxVec[u] = bias ? bias[u] : 0;
          addPart(x, base, ctxS, ctxD, ctxVec);
        }
        // Ad: cached per creative for the life of the model, confirmed on every ad input.
        const key = adS.length > 0 ? sp[s + adS[0]] : 0;
        let list = adCache.get(key);
        let hit: AdEntry | undefined;
        if (list !== undefined) {
          for (let e = 0; e < list.length && hit === undefined; e++) {
            const en = list[e];
            let eq = true;
            for (let k = 0; eq && k < adS.length; k++) eq = en.ids[k] === sp[s + adS[k]];
            for (let k = 0; eq && k < adD.length; k++) eq = en.vals[k] === dn[d + adD[k]];
            if (eq) hit = en;
          }
        }
        if (hit === undefined) {
          // Bounded: ids that never repeat (or a catalog far beyond any seat's) start it over.
          if (adCached >= 100_000) (adCache.clear(), (adCached = 0), (list = undefined));
          hit = { ids: new Int32Array(adS.length), vals: new Float32Array(adD.length), vec: new Float32Array(units) };
          for (let k = 0; k < adS.length; k++) hit.ids[k] = sp[s + adS[k]];
          for (let k = 0; k < adD.length; k++) hit.vals[k] = dn[d + adD[k]];
          addPart(x, base, adS, adD, hit.vec);
          if (list === undefined) adCache.set(key, (list = []));
          list.push(hit);
          adCached++;
        }
        const av = hit.vec;
        for (let u = 0; u < units; u++) pairVec[u] = ctxVec[u] + av[u];
        addPart(x, base, pairS, pairD, pairVec);
        out.set(pairVec, r * units);
      }
      return tf.tensor2d(out.subarray(0, rows * units), [rows, units], 'float32');
    },
  };
}

/** Multiply-adds per row up to which a chain of Dense layers is scored in JS (the LR with its Platt step has 59). */
const JS_CHAIN_MAX_MACS = 1024;

/**
 * A model that is only Dense layers in a chain over the fused first row (the logistic regression:
 * its logit, then the Platt calibration) scored in JS, straight from the id and dense arrays:
 * for a few dozen multiply-adds a row, the tfjs calls of a batch (the fused row's tensor, two
 * matMuls, the read back, tidy: ~80 µs per batch, about 5 µs per bid request) cost far more than
 * the arithmetic, and the fused row need not be written at all. Sums in float64 over the float32
 * weights and inputs; the float32 backends agree to 1e-6 (test/model-compile.test.ts). Null for
 * any other shape (a DCN's crosses, a wide MLP), which keeps `run`.
 */
function denseChain(parts: ConcatPart[], concat: string, layers: LayerDef[], outputName: string): Scores | null {
  const chain: Array<{ kernel: Float32Array; bias: Float32Array | null; units: number; activation: string }> = [];
  let from = concat;
  let width = -1;
  let macs = 0;
  const byInput = new Map<string, LayerDef>();
  for (const l of layers) if (l.className !== 'InputLayer') for (const i of l.inputs) byInput.set(i, l);
  while (from !== outputName) {
    const l = byInput.get(from);
    if (l === undefined || l.inputs.length !== 1) return null;
    from = l.name;
    if (l.className === 'Dropout') continue;
    const activation = (l.config.activation as string) ?? 'linear';
    if (l.className !== 'Dense' || !['linear', 'relu', 'sigmoid'].includes(activation)) return null;
    const [inDim, units] = l.weights[0].shape;
    if (width !== -1 && inDim !== width) return null;
    macs += inDim * units;
    width = units;
    chain.push({ kernel: l.weights[0].values(), bias: l.weights[1]?.values() ?? null, units, activation });
  }
  // Each layer of the chain reads one input, the one before it: the output depends on nothing else.
  if (chain.length === 0 || macs > JS_CHAIN_MAX_MACS) return null;
  const maxUnits = Math.max(...chain.map((c) => c.units));
  const first = chain[0];
  const u1 = first.units;
  const h = new Float64Array(maxUnits);
  const next = new Float64Array(maxUnits);
  let acc = new Float64Array(0);
  return (feeds, rows) => {
    if (acc.length < rows * u1) acc = new Float64Array(rows * u1);
    for (let r = 0; r < rows; r++) for (let u = 0; u < u1; u++) acc[r * u1 + u] = first.bias ? first.bias[u] : 0;
    // Part by part over all rows, one function per element type (as concatRows, for the same reason).
    let col = 0;
    for (const p of parts) {
      const src = feeds[p.input];
      const per = src.length / rows;
      if (p.table === undefined) addDense(src instanceof Float32Array ? src : Float32Array.from(src), rows, per, col, first.kernel, u1, acc);
      else if (src instanceof Int32Array) addEmbeddings(p, src, rows, per, col, first.kernel, u1, acc);
      else throw new Error(`embedding ${p.layer}: ids must be an Int32Array`);
      col += per * (p.table ? p.dim : 1);
    }
    const out = new Float32Array(rows * width);
    for (let r = 0; r < rows; r++) {
      for (let u = 0; u < u1; u++) h[u] = activate(first.activation, acc[r * u1 + u]);
      let n = u1;
      for (let c = 1; c < chain.length; c++) {
        const { kernel, bias, units, activation } = chain[c];
        for (let u = 0; u < units; u++) {
          let z = bias ? bias[u] : 0;
          for (let i = 0; i < n; i++) z += h[i] * kernel[i * units + u];
          next[u] = activate(activation, z);
        }
        for (let u = 0; u < units; u++) h[u] = next[u];
        n = units;
      }
      for (let u = 0; u < n; u++) out[r * n + u] = h[u];
    }
    return out;
  };
}

function activate(a: string, x: number): number {
  return a === 'relu' ? (x > 0 ? x : 0) : a === 'sigmoid' ? 1 / (1 + Math.exp(-x)) : x;
}

// One unit (a logit) sums in a local: accumulating through the array is a store and a reload per term.
function addDense(src: Float32Array, rows: number, per: number, col: number, kernel: Float32Array, units: number, acc: Float64Array): void {
  if (units === 1) {
    for (let r = 0; r < rows; r++) {
      let z = acc[r];
      for (let k = 0, i = r * per; k < per; k++) z += src[i + k] * kernel[col + k];
      acc[r] = z;
    }
    return;
  }
  for (let r = 0; r < rows; r++) {
    for (let k = 0, i = r * per; k < per; k++) {
      const v = src[i + k];
      for (let u = 0, w = (col + k) * units, o = r * units; u < units; u++) acc[o + u] += v * kernel[w + u];
    }
  }
}

/** addEmbeddings' running sums of the row before (one model scores at a time: synchronous). */
let partial = new Float64Array(0);

/** Equal as doubles, zeros by their sign too (a sum of zeros keeps the sign it started with). */
function sameDouble(a: number, b: number): boolean {
  return a === b && (a !== 0 || 1 / a === 1 / b);
}

function addEmbeddings(p: ConcatPart & { table: Float32Array }, ids: Int32Array, rows: number, per: number, col: number, kernel: Float32Array, units: number, acc: Float64Array): void {
  const { table, buckets, dim } = p;
  if (units === 1 && dim === 1) {
    // The LR's case, a weight per id. Rows of one imp share their leading (context) ids and start
    // from the same bias: a row whose first ids are the row before's, from the same start, takes
    // that row's sum so far, which is bit for bit the sum it would make (the same terms added in
    // the same order), and adds only the rest. `partial[f]`: the row before's sum of its first f terms.
    if (partial.length < per + 1) partial = new Float64Array(per + 1);
    for (let r = 0, i = 0; r < rows; r++, i += per) {
      let z = acc[r];
      let f = 0;
      if (r > 0 && sameDouble(z, partial[0])) {
        while (f < per && ids[i + f] === ids[i - per + f]) f++;
        z = partial[f];
      } else partial[0] = z;
      for (; f < per; f++) {
        const id = ids[i + f];
        if (!(id >= 0 && id < buckets)) throw new Error(`embedding ${p.layer}: id ${id} outside [0, ${buckets})`);
        z += table[id] * kernel[col + f];
        partial[f + 1] = z;
      }
      acc[r] = z;
    }
    return;
  }
  if (units === 1) {
    for (let r = 0; r < rows; r++) {
      let z = acc[r];
      for (let f = 0, i = r * per, c = col; f < per; f++) {
        const id = ids[i + f];
        if (!(id >= 0 && id < buckets)) throw new Error(`embedding ${p.layer}: id ${id} outside [0, ${buckets})`);
        for (let j = id * dim, end = j + dim; j < end; j++, c++) z += table[j] * kernel[c];
      }
      acc[r] = z;
    }
    return;
  }
  for (let r = 0; r < rows; r++) {
    for (let f = 0, i = r * per, c = col; f < per; f++) {
      const id = ids[i + f];
      if (!(id >= 0 && id < buckets)) throw new Error(`embedding ${p.layer}: id ${id} outside [0, ${buckets})`);
      for (let j = id * dim, end = j + dim; j < end; j++, c++) {
        const v = table[j];
        for (let u = 0, w = c * units, o = r * units; u < units; u++) acc[o + u] += v * kernel[w + u];
      }
    }
  }
}

function compileLayers(inputNames: string[], layers: LayerDef[], outputName: string, split?: RowSplit): CompiledOps | null {
  const fusion = findFusion(inputNames, layers);
  const scratch = { buf: new Float32Array(0), width: 0 };
  const first = fusion && split ? splitFirstDense(layers, fusion.concat.name, fusion.parts, split) : null;
  const nodes: Node[] = [];
  const inputsOf = new Map<string, string[]>();
  for (const l of layers) {
    if (l.className === 'InputLayer' || fusion?.skip.has(l.name)) continue;
    const op = layerOp(l);
    if (op === null) return null;
    nodes.push({ name: l.name, op });
    inputsOf.set(l.name, l.inputs);
  }
  const run: Run = (feeds, rows) => {
    const values = new Map<string, tf.Tensor>();
    // A model input still read by an op (not only by the fusion) becomes a tensor when first needed.
    const value = (name: string): tf.Tensor => {
      let t = values.get(name);
      if (t === undefined) {
        const a = feeds[inputNames.indexOf(name)];
        t = tf.tensor2d(a, [rows, a.length / rows], a instanceof Int32Array ? 'int32' : 'float32');
        values.set(name, t);
      }
      return t;
    };
    if (fusion) values.set(fusion.concat.name, concatRows(fusion.parts, feeds, rows, scratch));
    if (first) {
      const y = first.run(feeds, rows, scratch.buf, scratch.width);
      if (y) values.set(first.name, y);
    }
    for (const n of nodes) if (!values.has(n.name)) values.set(n.name, n.op(inputsOf.get(n.name)!.map(value)));
    return value(outputName);
  };
  return { run, scores: fusion ? denseChain(fusion.parts, fusion.concat.name, layers, outputName) : null };
}

/**
 * A trained LayersModel as a straight list of TensorFlow.js ops over its weights, for scoring.
 * `LayersModel.predict` walks the layer graph, checks and copies its feeds and calls each layer
 * through its training-aware `call()` on every batch; on the wasm backend that bookkeeping costs
 * more than the arithmetic of a small CTR model. Here each Dense becomes one fused matMul (bias
 * and activation included), Dropout disappears, and the rest are single ops. Returns null for a
 * layer this does not know, so the caller can fall back to `predict`.
 */
export function compileForInference(model: tf.LayersModel, split?: RowSplit): CompiledOps | null {
  const layers: LayerDef[] = [];
  for (const layer of model.layers) {
    const className = layer.getClassName();
    if (!KNOWN.has(className)) return null;
    if (className === 'InputLayer') continue;
    if (layer.inboundNodes.length !== 1) return null;
    layers.push({
      name: layer.name,
      className,
      inputs: layer.inboundNodes[0].inboundLayers.map((l) => l.name),
      config: layer.getConfig() as Record<string, unknown>,
      weights: layer.getWeights().map((t) => ({ shape: t.shape, values: () => t.dataSync() as Float32Array, tensor: () => t })),
    });
  }
  if (model.outputLayers.length !== 1) return null;
  return compileLayers(
    model.inputLayers.map((l) => l.name),
    layers,
    model.outputLayers[0].name,
    split,
  );
}

/** The model.json problems that tfjs would also refuse, every one found; each names its layer. */
export class TopologyError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('; '));
    this.problems = problems;
  }
}

type Shape = (number | null)[];
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const same = (a: Shape, b: Shape) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The same op list built straight from a saved version (model.json topology, weight manifest and
 * weights.bin bytes), without a LayersModel. Building a LayersModel costs the event loop several
 * milliseconds in one synchronous stretch (layer objects, weight variables, initialisers later
 * overwritten); this reads the layer list, checks every shape, and creates only the tensors the
 * Dense ops use (embedding tables stay typed-array views into `weightData`), well under a
 * millisecond for our models.
 *
 * Returns null when the topology uses anything this does not know (another layer class, shared
 * layers, a broadcasting merge, an activation other than linear/relu/sigmoid): the caller then
 * builds a LayersModel as before. Throws TopologyError listing every problem tfjs would refuse
 * (a layer past a wrong one is still checked, from the shapes its config declares), also when
 * some layer is one it does not know.
 */
export function compileArtifacts(modelTopology: object, weightSpecs: { name: string; shape: number[]; dtype: string }[], weightData: ArrayBuffer, split?: RowSplit): CompiledModel | null {
  const top = modelTopology as Record<string, unknown>;
  const cfg = isObj(top.config) ? top.config : undefined;
  if (!cfg || !Array.isArray(cfg.layers) || !Array.isArray(cfg.input_layers) || !Array.isArray(cfg.output_layers)) {
    throw new TopologyError(['model.json modelTopology has no config with layers, input_layers and output_layers']);
  }
  if (top.class_name !== 'Model' && top.class_name !== 'Functional') return null;

  // Weights in manifest order, each a view into weightData (4-byte aligned: float32/int32 only).
  const byName = new Map<string, { shape: number[]; offset: number; size: number }>();
  let offset = 0;
  for (const w of weightSpecs) {
    if (w.dtype !== 'float32') return null;
    const size = w.shape.reduce((a, b) => a * b, 1);
    byName.set(w.name, { shape: w.shape, offset, size });
    offset += 4 * size;
  }
  const created: tf.Tensor[] = [];
  const weight = (layer: string, name: string): Weight | undefined => {
    const w = byName.get(`${layer}/${name}`);
    if (w === undefined) return undefined;
    byName.delete(`${layer}/${name}`);
    const view = new Float32Array(weightData, w.offset, w.size);
    let t: tf.Tensor | undefined;
    return {
      shape: w.shape,
      values: () => view,
      tensor: () => {
        if (t === undefined) created.push((t = tf.tensor(view, w.shape, 'float32')));
        return t;
      },
    };
  };

  // null: a layer whose output shape is not known (one this does not build, or whose input is
  // wrong); layers reading it skip the checks that need it rather than report a consequence.
  const shapes = new Map<string, Shape | null>();
  const layers: LayerDef[] = [];
  const problems: string[] = [];
  // False once a layer is one only tfjs builds.
  let buildable = true;
  for (const raw of cfg.layers as unknown[]) {
    if (!isObj(raw) || typeof raw.class_name !== 'string' || typeof raw.name !== 'string' || !isObj(raw.config)) {
      problems.push('model.json: every layer needs class_name, name and config');
      continue;
    }
    const className = raw.class_name;
    const name = raw.name;
    const config = raw.config;
    if (shapes.has(name)) {
      problems.push(`model.json: layer name ${name} is used twice`);
      continue;
    }
    shapes.set(name, null);
    if (className === 'InputLayer') {
      const s = config.batch_input_shape;
      if (!Array.isArray(s) || s.length < 2 || s[0] !== null || !s.slice(1).every((d) => Number.isInteger(d) && d > 0)) {
        problems.push(`model.json: input ${name} has no batch_input_shape [null, ...]`);
      } else shapes.set(name, s as Shape);
      continue;
    }
    const nodes = raw.inbound_nodes;
    // One call per layer (no shared layers), each inbound tensor the first output of its layer.
    const refs = Array.isArray(nodes) && nodes.length === 1 && Array.isArray(nodes[0]) && nodes[0].length > 0 ? (nodes[0] as unknown[]) : [];
    if (!KNOWN.has(className) || refs.length === 0 || !refs.every((r) => Array.isArray(r) && typeof r[0] === 'string' && r[1] === 0 && r[2] === 0)) {
      buildable = false;
      continue;
    }
    const inputs = refs.map((r) => (r as string[])[0]);
    for (const i of inputs) if (!shapes.has(i)) problems.push(`model.json: layer ${name} reads ${i}, which no earlier layer defines`);
    const ins = inputs.map((i) => shapes.get(i) ?? null);
    const x = ins[0];
    const known = ins.every((s) => s !== null);
    const weights: Weight[] = [];
    // `shape` undefined: the weight's shape depends on an input whose shape is not known.
    const need = (w: string, shape?: number[]) => {
      const got = weight(name, w);
      if (got === undefined) problems.push(`model.json: layer ${name} has no weight ${name}/${w} in the manifest`);
      else if (shape && !same(got.shape, shape)) problems.push(`layer ${name}: weight ${w} has shape ${JSON.stringify(got.shape)}, the layer needs ${JSON.stringify(shape)}`);
      else weights.push(got);
    };
    let out: Shape | null = null;
    switch (className) {
      case 'Embedding': {
        const inputDim = config.input_dim as number;
        const outputDim = config.output_dim as number;
        if (!(Number.isInteger(inputDim) && inputDim > 0 && Number.isInteger(outputDim) && outputDim > 0) || ins.length !== 1) {
          problems.push(`layer ${name}: Embedding needs integer input_dim and output_dim and one input`);
          break;
        }
        need('embeddings', [inputDim, outputDim]);
        if (x) out = [...x, outputDim];
        break;
      }
      case 'Flatten':
        if (!x) break;
        if (ins.length !== 1 || x.slice(1).some((d) => d === null)) buildable = false;
        else out = [null, x.slice(1).reduce((a, b) => a! * b!, 1)];
        break;
      case 'Concatenate': {
        if (!known) break;
        const axis = (config.axis as number) ?? -1;
        if (axis !== -1 || ins.some((s) => s!.length !== 2)) buildable = false;
        else out = [null, ins.reduce((n, s) => n + (s![1] as number), 0)];
        break;
      }
      case 'Dense': {
        const units = config.units as number;
        if (!(Number.isInteger(units) && units > 0) || ins.length !== 1 || (x && x.length !== 2)) {
          buildable = false;
          break;
        }
        need('kernel', x ? [x[1] as number, units] : undefined);
        if (config.use_bias !== false) need('bias', [units]);
        out = [null, units];
        break;
      }
      case 'Multiply':
      case 'Add':
        if (!known) break;
        if (ins.length < 2 || !ins.every((s) => same(s!, x!))) buildable = false;
        else out = x;
        break;
      default:
        out = x;
    }
    shapes.set(name, out);
    layers.push({ name, className, inputs, config, weights });
  }
  const inputNames: string[] = [];
  const inputShapes: Shape[] = [];
  for (const ref of cfg.input_layers as unknown[]) {
    if (!Array.isArray(ref) || typeof ref[0] !== 'string' || !shapes.has(ref[0])) problems.push('model.json: input_layers names an unknown layer');
    else {
      inputNames.push(ref[0]);
      inputShapes.push(shapes.get(ref[0]) ?? []);
    }
  }
  const outs = cfg.output_layers as unknown[];
  const outputName = outs.length === 1 && Array.isArray(outs[0]) && typeof outs[0][0] === 'string' && shapes.has(outs[0][0]) ? (outs[0][0] as string) : undefined;
  if (outputName === undefined) problems.push('model must have one output of shape [null,1]');
  if (buildable && byName.size > 0) problems.push(`model.json: weights ${[...byName.keys()].join(', ')} belong to no layer`);
  if (problems.length > 0) throw new TopologyError(problems);
  const ops = buildable ? compileLayers(inputNames, layers, outputName!, split) : null;
  if (ops === null) {
    for (const t of created) t.dispose();
    return null;
  }
  return {
    ...ops,
    inputShapes,
    outputShape: shapes.get(outputName!)!,
    dispose() {
      for (const t of created) t.dispose();
    },
  };
}
