import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FEATURE_SPEC } from '../src/features/features.js';
import { selectBackend } from '../src/model/backend.js';
import { loadLayersModel, loadModel, ModelLoadError, resolveModelDir } from '../src/model/store.js';

/**
 * What loading refuses: damaged copies of the shipped lr-v3 (the audit's damage.py), each refused
 * with every problem named, before it can price a bid.
 */

// Byte offsets in lr-v3's weights.bin: embeddings [65536,1], logit kernel [58,1] and bias, calibration kernel and bias.
const LOGIT_B = 262376;
const CAL_B = 262384;

type ModelJson = {
  modelTopology: { config: { layers: { name: string; class_name: string; config: Record<string, unknown> }[] } };
  weightsManifest: { weights: { name: string; shape: unknown[] }[] }[];
};

let models: string;
beforeAll(async () => {
  await selectBackend('wasm');
  models = mkdtempSync(join(tmpdir(), 'model-guard-'));
  return () => rmSync(models, { recursive: true, force: true });
});

/** A copy of lr-v3 named `name` (meta.version too), edited by `edit`. */
function damaged(name: string, edit: (dir: string) => void = () => {}): string {
  const dir = join(models, name);
  cpSync('models/lr-v3', dir, { recursive: true });
  editJson(dir, 'meta.json', (m) => (m.version = name));
  edit(dir);
  return dir;
}

function editJson<T = Record<string, unknown>>(dir: string, file: string, fn: (j: T) => void): void {
  const j = JSON.parse(readFileSync(join(dir, file), 'utf8')) as T;
  fn(j);
  writeFileSync(join(dir, file), JSON.stringify(j));
}

const layer = (m: ModelJson, name: string) => m.modelTopology.config.layers.find((l) => l.name === name)!;

function setF32(dir: string, offset: number, value: number): void {
  const b = readFileSync(join(dir, 'weights.bin'));
  b.writeFloatLE(value, offset);
  writeFileSync(join(dir, 'weights.bin'), b);
}

async function problemsOf(dir: string): Promise<string[]> {
  const err = await loadModel(dir).then(
    (m) => (m.dispose(), null),
    (e: unknown) => e,
  );
  expect(err, `${dir} loaded`).toBeInstanceOf(ModelLoadError);
  return (err as ModelLoadError).problems;
}

describe('numbers a model may not hold or give', () => {
  it('refuses NaN and infinite weights, naming the weight', async () => {
    expect(await problemsOf(damaged('nan-calib', (d) => setF32(d, CAL_B, NaN)))).toEqual([expect.stringMatching(/calibration\/bias.*1 value.*not finite/)]);
    expect(await problemsOf(damaged('inf-bias', (d) => setF32(d, LOGIT_B, Infinity)))).toEqual([expect.stringMatching(/logit\/bias.*not finite/)]);
    const nanRows = await problemsOf(
      damaged('nan-emb', (d) => {
        for (let i = 0; i < 100; i += 2) setF32(d, 4 * i, NaN);
      }),
    );
    expect(nanRows).toEqual([expect.stringMatching(/weights\/embeddings.*50 values.*not finite/)]);
  });

  it('train, eval and simulate (loadLayersModel) refuse non-finite weights as serve does, in rows no day may reach', async () => {
    // Two embedding rows: eval scored such a version on 5,000 rows (AUC 0.770) and passed it.
    const dir = damaged('nan-far', (d) => {
      setF32(d, 400, NaN);
      setF32(d, 800, Infinity);
    });
    const err = await loadLayersModel(dir).then(
      (m) => (m.layers.dispose(), null),
      (e: unknown) => e,
    );
    expect(err, 'loaded').toBeInstanceOf(ModelLoadError);
    expect((err as ModelLoadError).problems).toEqual(await problemsOf(dir));
    expect((err as ModelLoadError).problems).toEqual(['weight weights/embeddings has 2 values that are not finite (NaN or ±Infinity)']);
  });

  it('refuses a model whose scores on varied rows leave (0, 1): a tanh or linear output layer', async () => {
    const tanh = damaged('tanh-out', (d) => editJson<ModelJson>(d, 'model.json', (m) => (layer(m, 'calibration').config.activation = 'tanh')));
    expect(await problemsOf(tanh)).toEqual([expect.stringMatching(/pCTR.*outside \(0, 1\)/)]);
    const linear = damaged('linear-out', (d) => {
      editJson<ModelJson>(d, 'model.json', (m) => (layer(m, 'calibration').config.activation = 'linear'));
      setF32(d, CAL_B, 5);
    });
    expect(await problemsOf(linear)).toEqual([expect.stringMatching(/pCTR.*outside \(0, 1\)/)]);
  });

  it('refuses an embedding table smaller than the feature spec hash space', async () => {
    const small = damaged('small-emb', (d) => {
      editJson<ModelJson>(d, 'model.json', (m) => {
        m.weightsManifest[0].weights[0].shape = [1000, 1];
        layer(m, 'weights').config.input_dim = 1000;
      });
      const b = readFileSync(join(d, 'weights.bin'));
      writeFileSync(join(d, 'weights.bin'), Buffer.concat([b.subarray(0, 4000), b.subarray(262144)]));
    });
    expect(await problemsOf(small)).toEqual([`layer weights: the embedding table has 1000 rows, the feature spec hashes ids into ${FEATURE_SPEC.hashBuckets}`]);
  });

  it('the shipped versions pass every check', async () => {
    for (const v of ['lr-v3', 'dcn-v2', 'lr-v2']) (await loadModel(join('models', v))).dispose();
  });
});

describe('every problem at once, each readable', () => {
  it('lists file, meta and topology problems together', async () => {
    const many = damaged('topo-many', (d) => {
      editJson<ModelJson>(d, 'model.json', (m) => {
        const w = m.weightsManifest[0].weights;
        w[1].shape = [1, 58];
        w[3].shape = [1];
        w[4].shape = [1, 1];
        layer(m, 'sparse').config.batch_input_shape = [null, 27];
      });
      editJson(d, 'meta.json', (m) => (m.featureSpecHash = '0000'));
    });
    const problems = await problemsOf(many);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/built for feature spec 0000/),
        expect.stringMatching(/model inputs .* do not match the feature spec/),
        expect.stringMatching(/layer logit: weight kernel has shape \[1,58\], the layer needs \[57,1\]/),
        expect.stringMatching(/layer calibration: weight kernel has shape \[1\], the layer needs \[1,1\]/),
        expect.stringMatching(/layer calibration: weight bias has shape \[1,1\], the layer needs \[1\]/),
      ]),
    );
    expect(problems).toHaveLength(5);
    const cut = damaged('many-cut', (d) => {
      editJson(d, 'meta.json', (m) => Object.assign(m, { kind: 'xgb', featureSpecHash: '0000', trainedAt: 'yesterday' }));
      editJson<ModelJson>(d, 'model.json', (m) => (m.weightsManifest[0].weights[1].shape = [1, 58]));
      const b = readFileSync(join(d, 'weights.bin'));
      writeFileSync(join(d, 'weights.bin'), b.subarray(0, b.length - 4));
    });
    // The topology is still checked when the weights are short.
    expect(await problemsOf(cut)).toEqual([
      'weights.bin has 262384 bytes, model.json describes 262388',
      "meta.json: kind must be 'lr' or 'dcn', found \"xgb\"",
      `model many-cut was built for feature spec 0000, this bidder uses ${FEATURE_SPEC.hash}`,
      'meta.json: trainedAt must be an ISO date',
      'layer logit: weight kernel has shape [1,58], the layer needs [58,1]',
    ]);
  });

  it('says what is wrong with a shape, a folder in place of a file, a missing folder', async () => {
    const strings = damaged('shape-strings', (d) => editJson<ModelJson>(d, 'model.json', (m) => (m.weightsManifest[0].weights[1].shape = ['58', '1'])));
    expect(await problemsOf(strings)).toEqual(['model.json: weight logit/kernel has shape ["58","1"]: its dimensions must be non-negative integers']);
    const negative = damaged('shape-negative', (d) => editJson<ModelJson>(d, 'model.json', (m) => (m.weightsManifest[0].weights[1].shape = [-58, -1])));
    expect(await problemsOf(negative)).toEqual(['model.json: weight logit/kernel has shape [-58,-1]: its dimensions must be non-negative integers']);
    const folder = damaged('weights-folder', (d) => {
      rmSync(join(d, 'weights.bin'));
      mkdirSync(join(d, 'weights.bin'));
    });
    expect(await problemsOf(folder)).toEqual([`weights.bin is not a file (${join(folder, 'weights.bin')})`]);
    const nope = join(models, 'nope');
    expect(await problemsOf(nope)).toEqual([`model folder ${nope} does not exist`]);
  });

  it('names the version CURRENT names when it has no folder, and refuses a CURRENT that names none', () => {
    const dir = mkdtempSync(join(models, 'current-'));
    const current = join(dir, 'CURRENT');
    const refusal = () => {
      try {
        resolveModelDir(dir);
      } catch (err) {
        expect(err).toBeInstanceOf(ModelLoadError);
        return (err as ModelLoadError).problems;
      }
      return [];
    };
    writeFileSync(current, 'lr-v9\n');
    expect(refusal()).toEqual([`${current} names version lr-v9, which has no folder in ${dir}`]);
    writeFileSync(current, '');
    expect(refusal()).toEqual([`${current} must contain one version name, found ''`]);
    writeFileSync(current, 'lr-v3\nlr-v2\n');
    expect(refusal()).toEqual([`${current} must contain one version name, found 'lr-v3\\nlr-v2'`]);
  });
});

describe('where a model comes from', () => {
  it('refuses a folder whose meta.json names another version', async () => {
    const other = damaged('renamed', (d) => editJson(d, 'meta.json', (m) => (m.version = 'lr-v3')));
    expect(await problemsOf(other)).toEqual(['meta.json names version lr-v3, its folder is renamed: a version is loaded under its own name']);
  });

  it('refuses a version name whose folder is a link out of the models folder', () => {
    const outside = mkdtempSync(join(tmpdir(), 'outside-model-'));
    try {
      cpSync('models/lr-v3', join(outside, 'linked'), { recursive: true });
      symlinkSync(join(outside, 'linked'), join(models, 'linked'));
      const err = (() => {
        try {
          resolveModelDir(models, 'linked');
        } catch (e) {
          return e as ModelLoadError;
        }
      })();
      expect(err).toBeInstanceOf(ModelLoadError);
      expect(err!.problems).toEqual([`${join(models, 'linked')} is a link to ${join(outside, 'linked')}, outside ${models}: versions load only from the models folder`]);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});

describe('size limits, checked before reading', () => {
  it('refuses a 1.5 GB weights.bin and a 100 MB model.json at once, without reading them', async () => {
    // Sparse files: nothing is written, a read would still have to go through every byte.
    const huge = damaged('huge', (d) => {
      truncateSync(join(d, 'weights.bin'), 1.5e9);
      truncateSync(join(d, 'model.json'), 100e6);
    });
    const t0 = performance.now();
    const problems = await problemsOf(huge);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(problems).toEqual([
      'model.json has 100000000 bytes, more than the 16777216 a model.json may have',
      'weights.bin has 1500000000 bytes, more than the 536870912 a model may have',
    ]);
  });
});
