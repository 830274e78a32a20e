import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { FEATURE_SPEC } from '../src/features/features.js';
import { selectBackend } from '../src/model/backend.js';
import { loadModel, ModelLoadError, resolveModelDir } from '../src/model/store.js';
import { startBidder } from './helpers/bidder.js';

/**
 * What loading refuses beyond files and shapes: a Platt calibration that is broken while every
 * score stays a probability, an embedding table larger than the hash space, and a link loop said
 * as one. Copies of the shipped lr-v3, as test/model-guard.test.ts makes them.
 */

// Byte offsets in lr-v3's weights.bin: embeddings [65536,1] (262,144 bytes), logit kernel [58,1] and bias, calibration kernel and bias.
const EMB_END = 262144;
const CAL_A = 262380;
const CAL_B = 262384;

let models: string;
beforeAll(async () => {
  await selectBackend('wasm');
  models = mkdtempSync(join(tmpdir(), 'model-load-checks-'));
  cpSync('models/lr-v3', join(models, 'lr-v3'), { recursive: true });
  writeFileSync(join(models, 'CURRENT'), 'lr-v3\n');
});
afterAll(() => rmSync(models, { recursive: true, force: true }));

/** A copy of lr-v3 named `name` (meta.version too), edited by `edit`. */
function copy(name: string, edit: (dir: string) => void = () => {}): string {
  const dir = join(models, name);
  cpSync('models/lr-v3', dir, { recursive: true });
  editJson(dir, 'meta.json', (m) => (m.version = name));
  edit(dir);
  return dir;
}

function editJson(dir: string, file: string, fn: (j: Record<string, any>) => void): void {
  const j = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  fn(j);
  writeFileSync(join(dir, file), JSON.stringify(j));
}

function editF32(dir: string, offset: number, fn: (v: number) => number): void {
  const b = readFileSync(join(dir, 'weights.bin'));
  b.writeFloatLE(fn(b.readFloatLE(offset)), offset);
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

describe('a broken Platt calibration, every score still a probability', () => {
  const notTheFit = (a: string, b: string) => new RegExp(`^the calibration in weights\\.bin \\(a ${a}\\d*, b ${b}\\d*\\) is not the Platt fit meta\\.json records \\(a 0\\.978152014932619, b -0\\.07698881448918671\\): `);

  it('refuses lr-v3 with its calibration slope negated (calibration/kernel 0.978 -> -0.978), naming the slope and the training CTR', async () => {
    const neg = copy('b-cal-neg', (d) => editF32(d, CAL_A, (a) => -a));
    const problems = await problemsOf(neg);
    expect(problems).toEqual([expect.stringMatching(notTheFit('-0\\.978', '-0\\.0769'))]);
    expect(problems[0]).toContain('its slope at or under 0 gives the likeliest clicks the lowest pCTRs');
    expect(problems[0]).toContain('the training CTR (118062 clicks in 6000000 rows, 0.0197)');
  });

  it('refuses a calibration shifted off the fit, its slope still positive: every pCTR about 20 times its level', async () => {
    const shifted = copy('b-cal-shift', (d) => editF32(d, CAL_B, (b) => b + 3));
    const problems = await problemsOf(shifted);
    expect(problems).toEqual([expect.stringMatching(notTheFit('0\\.978', '2\\.92'))]);
    expect(problems[0]).not.toContain('slope');
  });

  it('loads the calibration meta.json records as the fit, a slope under 0 included (what the fit gives a logit that ranks the held-out rows backwards), and every shipped version', async () => {
    for (const [name, a, b] of [['b-cal-refit', 0.978152014932619, -2.5], ['b-cal-fit-negative', -1.15, 0.3]] as const) {
      const refit = copy(name, (d) => {
        editF32(d, CAL_A, () => a);
        editF32(d, CAL_B, () => b);
        editJson(d, 'meta.json', (m) => (m.metrics.calibration = [a, b]));
      });
      (await loadModel(refit)).dispose();
    }
    for (const v of ['lr-v4', 'lr-v4-ipinyou', 'lr-v3', 'lr-v3-ipinyou', 'lr-v2', 'lr-v2-ipinyou', 'dcn-v2']) (await loadModel(join('models', v))).dispose();
  });

  it('a reload of such a version is answered 409 and the running model keeps serving', async () => {
    const token = 'calibration-token-0123456789';
    const t = await startBidder({ adminToken: token, modelsDir: models });
    try {
      const r = await fetch(`${t.url}/admin/reload/model`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ version: 'b-cal-neg' }),
      });
      expect(r.status).toBe(409);
      expect(((await r.json()) as { problems: string[] }).problems).toEqual([expect.stringMatching(notTheFit('-0\\.978', '-0\\.0769'))]);
      expect(((await (await fetch(`${t.url}/readyz`)).json()) as { model: string }).model).toBe('lr-v3');
    } finally {
      await t.close();
    }
  });

  it('serve refuses to start on it, the calibration listed with the other problems, exit 2', () => {
    copy('b-cal-neg-many', (d) => {
      editF32(d, CAL_A, (a) => -a);
      editJson(d, 'meta.json', (m) => (m.trainedAt = 'yesterday'));
    });
    const run = spawnSync(process.execPath, ['dist/cli.js', 'serve', '--models', models, '--model', 'b-cal-neg-many', '--port', '0', '--host', '127.0.0.1', '--log-level', 'silent'], { encoding: 'utf8', timeout: 30_000 });
    expect(run.status, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/cannot load model from .*b-cal-neg-many \(2 problems\)/);
    for (const p of [/trainedAt must be an ISO date/, /the calibration in weights\.bin \(a -0\.978\d*, b -0\.0769\d*\) is not the Platt fit meta\.json records .*its slope at or under 0/]) expect(run.stderr).toMatch(p);
  });
});

describe('a large weights.bin', () => {
  afterEach(() => vi.restoreAllMocks());

  it('is used as read, not copied whole (a 400 MB one held the event loop 0.6 s copying)', async () => {
    const slice = vi.spyOn(ArrayBuffer.prototype, 'slice');
    (await loadModel(join(models, 'lr-v3'))).dispose();
    const whole = slice.mock.calls.filter(([begin = 0, end]) => end !== undefined && end - begin >= readFileSync(join(models, 'lr-v3', 'weights.bin')).length);
    expect(whole).toEqual([]);
  });

  it('refuses an embedding table with more rows than the feature spec hash space, without reading weights.bin', async () => {
    const big = copy('big-emb', (d) => {
      editJson(d, 'model.json', (m) => {
        m.weightsManifest[0].weights[0].shape = [FEATURE_SPEC.hashBuckets + 1, 1];
        m.modelTopology.config.layers.find((l: { name: string }) => l.name === 'weights').config.input_dim = FEATURE_SPEC.hashBuckets + 1;
      });
      const b = readFileSync(join(d, 'weights.bin'));
      // A NaN in the row past the hash space: it would be named, were weights.bin read.
      writeFileSync(join(d, 'weights.bin'), Buffer.concat([b.subarray(0, EMB_END), Buffer.from(Float32Array.of(NaN).buffer), b.subarray(EMB_END)]));
    });
    // Refused on model.json alone: the 400 MB a 100,000,000-row table takes are not read.
    expect(await problemsOf(big)).toEqual([`layer weights: the embedding table has ${FEATURE_SPEC.hashBuckets + 1} rows, the feature spec hashes ids into ${FEATURE_SPEC.hashBuckets}: rows past it are never read`]);
  });
});

describe('a loop of symbolic links', () => {
  const loop = /is a loop of symbolic links \(ELOOP\)/;

  it('in place of model.json is named as a loop, not as a missing file', async () => {
    const looped = copy('loop-json', (d) => {
      rmSync(join(d, 'model.json'));
      symlinkSync('model.json', join(d, 'model.json'));
    });
    const problems = await problemsOf(looped);
    expect(problems).toEqual([expect.stringMatching(/^model\.json is a loop of symbolic links \(ELOOP\)/)]);
  });

  it('in place of a version folder, asked by name or named by CURRENT', async () => {
    const dir = mkdtempSync(join(models, 'loop-folder-'));
    symlinkSync('v1', join(dir, 'v1'));
    const err = await loadModel(resolveModelDir(dir, 'v1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect((err as ModelLoadError).problems).toEqual([expect.stringMatching(new RegExp(`^model folder ${join(dir, 'v1')} ${loop.source}`))]);
    writeFileSync(join(dir, 'CURRENT'), 'v1\n');
    expect(() => resolveModelDir(dir)).toThrow(new RegExp(`CURRENT names version v1: ${join(dir, 'v1')} ${loop.source}`));
  });
});

describe('a JSON file that starts with a UTF-8 byte order mark', () => {
  // Windows editors (Notepad, PowerShell's Out-File) write one; it was refused as "Unexpected token '\uFEFF'", the token invisible.
  // Accepted, as bidder.yaml and CURRENT accept one.
  it('loads, meta.json and model.json alike', async () => {
    const bom = copy('bom', (d) => {
      for (const f of ['meta.json', 'model.json']) writeFileSync(join(d, f), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), readFileSync(join(d, f))]));
    });
    const m = await loadModel(bom);
    expect(m.version).toBe('bom');
    m.dispose();
  });

  it('past the mark, bad JSON is still named', async () => {
    const bad = copy('bom-bad', (d) => writeFileSync(join(d, 'meta.json'), '\uFEFF{"version": '));
    expect(await problemsOf(bad)).toEqual([expect.stringMatching(/^meta\.json is not valid JSON: /)]);
  });
});
