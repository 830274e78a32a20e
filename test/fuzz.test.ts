import { readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { postRaw } from './helpers/http.js';

/**
 * Hostile-input fuzz (issue 6 §2): a seeded mutation fuzzer over the shared OpenRTB corpus sends
 * FUZZ_INPUTS mutated requests to the real bidder over keep-alive HTTP. Every answer must be a
 * 200/204 or a 4xx carrying `{error, reason}`; no 5xx, no dropped connection, and the bidder is
 * still ready afterwards. A failure prints the seed and the input, so it replays with FUZZ_SEED.
 */
const INPUTS = Number(process.env.FUZZ_INPUTS ?? 20_000);
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed6);
const CONCURRENCY = Number(process.env.FUZZ_CONC ?? 32);

const corpusDir = 'test/fixtures/corpus';
const seeds = ['openrtb-requests.prebid-go.ndjson', 'openrtb-requests.iab-spec.ndjson', 'openrtb-requests.prebid-go.rejected.ndjson'].flatMap((f) =>
  readFileSync(`${corpusDir}/${f}`, 'utf8').trim().split('\n'),
);

function mulberry32(a: number) {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rng = () => number;
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const int = (r: Rng, n: number) => Math.floor(r() * n);

const NASTY_VALUES: unknown[] = [
  null, true, false, 0, -1, -0.0, 1e308, -1e308, 9007199254740993, 2 ** 31, -(2 ** 31) - 1, 0.1, 1e-320,
  '', ' ', '0', 'NaN', 'Infinity', '-1', 'USD', 'usd', '\u0000', '\ud800', '\u202e', '${AUCTION_PRICE}', '<script>', 'x'.repeat(10_000),
  [], [null], [1, 'a', {}], {}, { id: 1 }, { __proto__: { polluted: 1 } }, { constructor: { prototype: { polluted: 1 } } },
];
const HUGE_NUMBERS = ['1e999', '-1e999', '1e-999', '123456789012345678901234567890', '-0', '0e0', '1E+308', '18446744073709551616'];
const GZIP_BOMB = gzipSync(Buffer.alloc(4 * 1024 * 1024, 0x20));
const KEYS = ['id', 'imp', 'banner', 'video', 'native', 'audio', 'bidfloor', 'bidfloorcur', 'tmax', 'at', 'cur', 'bcat', 'badv', 'bapp', 'site', 'app', 'device', 'user', 'regs', 'geo', 'format', 'w', 'h', 'pmp', 'deals', 'ext', 'cat', 'sectioncat', 'pagecat', 'publisher', 'segment', 'data', 'consent', 'gdpr', 'coppa', 'ifa', 'buyeruid', 'utcoffset', '__proto__', 'constructor', 'prototype'];

/** Fields of OpenRTB 2.6 that a bidder reads: set to hostile values whether or not the seed has them. */
const READ_FIELDS = [
  'id', 'tmax', 'at', 'cur', 'bcat', 'badv', 'bapp', 'wseat', 'bseat', 'source.schain', 'source.ext.schain',
  'site.id', 'site.domain', 'site.cat', 'site.sectioncat', 'site.pagecat', 'site.page', 'site.publisher', 'site.publisher.id', 'site.content.cat',
  'app.id', 'app.bundle', 'app.cat', 'app.sectioncat', 'app.pagecat', 'app.publisher.id',
  'device.ua', 'device.ip', 'device.ipv6', 'device.ifa', 'device.os', 'device.devicetype', 'device.geo', 'device.geo.country', 'device.geo.region', 'device.geo.utcoffset', 'device.lmt', 'device.dnt',
  'user.id', 'user.buyeruid', 'user.consent', 'user.data', 'user.data.0.segment', 'user.data.0.segment.0.id', 'user.ext.consent', 'user.eids',
  'regs.coppa', 'regs.gdpr', 'regs.us_privacy', 'regs.gpp', 'regs.gpp_sid', 'regs.ext.gdpr', 'regs.ext.us_privacy',
  'imp.0.id', 'imp.0.bidfloor', 'imp.0.bidfloorcur', 'imp.0.instl', 'imp.0.rwdd', 'imp.0.qty', 'imp.0.dt', 'imp.0.tagid',
  'imp.0.banner.w', 'imp.0.banner.h', 'imp.0.banner.format', 'imp.0.banner.format.0.w', 'imp.0.banner.battr', 'imp.0.banner.mimes',
  'imp.0.video.mimes', 'imp.0.video.minduration', 'imp.0.video.maxduration', 'imp.0.video.w', 'imp.0.video.protocols', 'imp.0.video.battr',
  'imp.0.audio.mimes', 'imp.0.native.request', 'imp.0.native.battr',
  'imp.0.pmp', 'imp.0.pmp.private_auction', 'imp.0.pmp.deals', 'imp.0.pmp.deals.0.id', 'imp.0.pmp.deals.0.bidfloor', 'imp.0.pmp.deals.0.bidfloorcur', 'imp.0.pmp.deals.0.wseat',
  // OpenRTB 2.6 fields eligibility and pricing read since the conformance audit.
  'acat', 'cattax', 'wlang', 'wlangb', 'regs.ext.dsa', 'regs.ext.dsa.dsarequired', 'regs.ext.dsa.pubrender', 'imp.0.exp', 'imp.0.qty.multiplier', 'imp.0.banner.btype',
  'imp.0.video.rqddurs', 'imp.0.video.poddur', 'imp.0.video.mincpmpersec', 'imp.0.video.durfloors', 'imp.0.video.durfloors.0.bidfloor', 'imp.0.video.delivery', 'imp.0.video.maxbitrate',
  'imp.0.audio.durfloors', 'imp.0.pmp.deals.0.at', 'imp.0.pmp.deals.0.wadomain', 'imp.0.pmp.deals.0.mincpmpersec', 'imp.0.pmp.deals.0.durfloors',
];

/** Sets `dotted` in `doc`, creating objects on the way; an existing non-object on the way is replaced. */
function setField(doc: unknown, dotted: string, value: unknown): unknown {
  if (!doc || typeof doc !== 'object') return doc;
  const keys = dotted.split('.');
  let o = doc as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) {
    if (!o[k] || typeof o[k] !== 'object') o[k] = /^\d+$/.test(k) ? [] : {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys[keys.length - 1]] = value;
  return doc;
}

/** Paths to every value inside a JSON document, so a mutation can pick any of them. */
function paths(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v && typeof v === 'object') for (const k of Object.keys(v)) paths((v as Record<string, unknown>)[k], [...at, k], out);
  return out;
}

function setAt(root: unknown, path: (string | number)[], value: unknown, remove = false): unknown {
  if (path.length === 0) return value;
  let o = root as Record<string | number, unknown>;
  for (let i = 0; i < path.length - 1; i++) o = o[path[i]] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (remove) {
    if (Array.isArray(o)) o.splice(last as number, 1);
    else delete o[last];
  } else o[last] = value;
  return root;
}

function nest(depth: number, inner: string, r: Rng): string {
  const arr = r() < 0.5;
  return (arr ? '['.repeat(depth) : '{"a":'.repeat(depth)) + inner + (arr ? ']'.repeat(depth) : '}'.repeat(depth));
}

interface FuzzInput {
  body: Buffer;
  headers: Record<string, string>;
  path: string;
  what: string;
}

/** One mutated request: one to three structural or byte-level mutations of a corpus request. */
function mutate(r: Rng): FuzzInput {
  const seed = pick(r, seeds);
  let doc: unknown = JSON.parse(seed);
  const ops: string[] = [];
  let text: string | null = null;
  const rounds = 1 + int(r, 3);
  for (let k = 0; k < rounds; k++) {
    const op = int(r, 9);
    const all = paths(doc);
    const p = pick(r, all);
    switch (op) {
      case 0:
        ops.push(`swap ${p.join('.')}`);
        doc = setAt(doc, p, structuredClone(pick(r, NASTY_VALUES)));
        break;
      case 1:
        if (p.length) {
          ops.push(`delete ${p.join('.')}`);
          doc = setAt(doc, p, undefined, true);
        }
        break;
      case 2: {
        const parent = p.length ? p : [];
        const target = parent.reduce<unknown>((o, key) => (o as Record<string | number, unknown>)[key], doc);
        if (target && typeof target === 'object' && !Array.isArray(target)) {
          const key = pick(r, KEYS);
          ops.push(`add ${[...parent, key].join('.')}`);
          (target as Record<string, unknown>)[key] = structuredClone(pick(r, NASTY_VALUES));
        }
        break;
      }
      case 3: {
        // Replace a subtree by a copy of another one: imp where site was, arrays where strings were.
        const q = pick(r, all);
        const src = q.reduce<unknown>((o, key) => (o as Record<string | number, unknown>)[key], doc);
        ops.push(`graft ${q.join('.')} -> ${p.join('.')}`);
        doc = setAt(doc, p, structuredClone(src));
        break;
      }
      case 4: {
        const d = 1 + int(r, 200);
        ops.push(`nest ${d} at ${p.join('.')}`);
        text = JSON.stringify(setAt(doc, p, '@@NEST@@')).replace('"@@NEST@@"', nest(d, '1', r));
        break;
      }
      case 5:
        ops.push('huge numbers');
        text = JSON.stringify(doc).replace(/(?<=[:[,])-?\d+(\.\d+)?(?=[,\]}])/g, (m) => (r() < 0.3 ? pick(r, HUGE_NUMBERS) : m));
        break;
      case 6: {
        const imps = doc && typeof doc === 'object' ? (doc as { imp?: unknown }).imp : undefined;
        if (Array.isArray(imps) && imps.length) {
          const n = int(r, 300);
          ops.push(`imp x${n}`);
          for (let i = 0; i < n; i++) imps.push({ ...(imps[0] as object), id: String(i % 50) });
        }
        break;
      }
      case 7: {
        const f = pick(r, READ_FIELDS);
        ops.push(`field ${f}`);
        doc = setField(doc, f, structuredClone(pick(r, NASTY_VALUES)));
        break;
      }
      default:
        break;
    }
    if (text !== null) break;
  }
  let body = Buffer.from(text ?? JSON.stringify(doc) ?? 'null');
  const byteOp = int(r, 10);
  if (byteOp === 0) {
    const n = 1 + int(r, 8);
    ops.push(`flip ${n} bytes`);
    body = Buffer.from(body);
    for (let i = 0; i < n && body.length; i++) body[int(r, body.length)] ^= 1 << int(r, 8);
  } else if (byteOp === 1) {
    const at = int(r, body.length + 1);
    ops.push(`truncate at ${at}`);
    body = body.subarray(0, at);
  } else if (byteOp === 2) {
    ops.push('invalid utf-8');
    const at = int(r, body.length + 1);
    body = Buffer.concat([body.subarray(0, at), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), body.subarray(at)]);
  }
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const encOp = int(r, 12);
  if (encOp <= 1) {
    ops.push('gzip');
    body = gzipSync(body);
    headers['content-encoding'] = 'gzip';
    if (encOp === 1) {
      ops.push('corrupt gzip');
      body[10 + int(r, Math.max(1, body.length - 10))] ^= 0xff;
    }
  } else if (encOp === 2) {
    ops.push('gzip header on a plain body');
    headers['content-encoding'] = 'gzip';
  } else if (encOp === 3) {
    ops.push('gzip bomb');
    body = GZIP_BOMB;
    headers['content-encoding'] = 'gzip';
  } else if (encOp === 4) {
    headers['content-encoding'] = pick(r, ['br', 'deflate', 'GZIP', 'gzip, gzip', 'x']);
    ops.push(`encoding ${headers['content-encoding']}`);
  }
  const hdrOp = int(r, 16);
  if (hdrOp === 0) headers['content-type'] = pick(r, ['text/plain', '', 'application/jsonx', 'APPLICATION/JSON; charset=utf-8', 'multipart/form-data']);
  else if (hdrOp === 1) headers['x-openrtb-version'] = pick(r, ['2.5', '2.6', '3.0', '2.6.1', '', 'x'.repeat(300)]);
  const path = r() < 0.02 ? '/openrtb2/nosuch/bid' : r() < 0.25 ? '/openrtb2/demo-eu/bid' : '/openrtb2/bid';
  return { body, headers, path, what: ops.join(', ') };
}

interface Outcome {
  status: number;
  problem: string;
}

function judge(status: number, text: string): string {
  if (status >= 500) return `status ${status}`;
  if (status === 204) return text === '' ? '' : '204 with a body';
  if (status === 200) {
    try {
      const v = JSON.parse(text) as { id?: unknown };
      return typeof v.id === 'string' ? '' : '200 without a response id';
    } catch {
      return '200 with a body that is not JSON';
    }
  }
  if (status >= 400 && status < 500) {
    try {
      const v = JSON.parse(text) as { error?: unknown; reason?: unknown };
      return typeof v.error === 'string' && typeof v.reason === 'string' ? '' : `${status} without {error, reason}`;
    } catch {
      return `${status} with a body that is not JSON`;
    }
  }
  return `unexpected status ${status}`;
}

describe('mutation fuzz over HTTP', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder();
  });
  afterAll(() => t.close());

  it(`answers ${INPUTS} mutated corpus requests with 200/204/4xx, never a 5xx or a dropped connection`, async () => {
    const r = mulberry32(SEED);
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    let next = 0;
    const started = performance.now();
    async function worker(): Promise<void> {
      while (next < INPUTS) {
        const i = next++;
        // Generated right after taking its number, so input #i is the same whatever the answer order.
        const input = mutate(r);
        let out: Outcome;
        try {
          const res = await postRaw(agent, t.url + input.path, input.body, input.headers);
          out = { status: res.status, problem: judge(res.status, res.text) };
          if (out.problem) out.problem += `: ${res.text.slice(0, 200)}`;
        } catch (err) {
          out = { status: 0, problem: `request failed: ${(err as Error).message}` };
        }
        statuses.set(out.status, (statuses.get(out.status) ?? 0) + 1);
        if (out.problem && failures.length < 20) failures.push(`#${i} [${input.what}] ${input.path}: ${out.problem}\n    body: ${input.body.subarray(0, 300).toString('latin1')}`);
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    agent.destroy();
    const seconds = (performance.now() - started) / 1000;
    // Figures for whoever tunes FUZZ_INPUTS or CONCURRENCY; nothing asserts on them.
    console.log(`fuzz: seed ${SEED}, ${INPUTS} inputs in ${seconds.toFixed(1)} s; statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    expect(failures, `seed ${SEED}`).toEqual([]);
    // The mutations must reach past decoding: some inputs still bid or no-bid, others are refused.
    expect((statuses.get(200) ?? 0) + (statuses.get(204) ?? 0)).toBeGreaterThan(INPUTS / 20);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(INPUTS / 20);
    expect(await t.metric('bidder_internal_errors_total')).toBe(0);
    const ready = await fetch(t.url + '/readyz');
    expect(ready.status).toBe(200);
    const ok = await t.post('/openrtb2/bid', seeds[0]);
    expect([200, 204]).toContain(ok.status);
  }, 180_000);
});
