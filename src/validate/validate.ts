import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { _, Ajv, type ErrorObject, type KeywordCxt } from 'ajv';
import type { BidRequest } from 'iab-openrtb/v26';
import { BidderError, type ErrorCode } from '../errors/codes.js';

export interface ValidateLimits {
  maxTmaxMs: number;
  maxImps: number;
}

type Schema = Record<string, unknown>;

const SCHEMA_FILE = 'openrtb/schema/bid-request.schema.json';

/**
 * The JSON Schema of what the bidder reads, shipped with the package: found by walking up from
 * this module, since builds place it at different depths (dist/, and the load test's own build).
 */
function readSchema(): Schema {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const path = join(dir, SCHEMA_FILE);
    if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8'));
    if (dirname(dir) === dir) throw new Error(`${SCHEMA_FILE} not found above ${fileURLToPath(import.meta.url)}`);
  }
}

const SCHEMA = readSchema();

// When several fields are wrong the answer names the most basic problem first.
const PRIORITY: ErrorCode[] = [
  'NOT_OBJECT',
  'MISSING_ID',
  'MISSING_IMP',
  'BAD_IMP',
  'BAD_MEDIA',
  'NO_MEDIA',
  'BAD_FLOOR',
  'BAD_CURRENCY',
  'BAD_TMAX',
  'BAD_AUCTION_TYPE',
  'BAD_FIELD_TYPE',
];

/** A JSON number's text, as a numeric string that `x-coerce: number` reads must be. */
const NUMERIC = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/;

/** A string's number where it is one; else the string, for the schema's type check to refuse. */
function numberOf(v: string): number | string {
  return NUMERIC.test(v) ? Number(v) : v;
}

/**
 * The schema's `x-coerce`, on an object: `{ field: 'string' | 'number' }`, fields read in another
 * JSON type where the reading is unambiguous: a number as its decimal string (ids exchanges send as
 * numbers), a numeric string as its number (`devicetype: "2"`). Rewritten in the object before
 * `properties` checks the fields' types, so the declared types stay the rule and a value with no
 * such reading still fails them. A keyword rather than ajv's `coerceTypes`, which is per instance
 * and would read `bidfloor: "1.5"` or `w: "300"` too: money and format fields stay strict. Inline
 * code, not a function keyword: ajv calls one with a context object built per object validated,
 * which took validation of a bench request from ~3.7 to ~6-9 µs; inline, ~3.7-4.4 µs.
 */
function coerceCode(cxt: KeywordCxt): void {
  const { gen, data, schema } = cxt;
  const toNumber = gen.scopeValue('func', { ref: numberOf });
  for (const [field, to] of Object.entries(schema as Record<string, 'string' | 'number'>)) {
    const v = gen.const('v', _`${data}[${field}]`);
    if (to === 'string') gen.if(_`typeof ${v} == "number"`, () => gen.assign(_`${data}[${field}]`, _`String(${v})`));
    else gen.if(_`typeof ${v} == "string"`, () => gen.assign(_`${data}[${field}]`, _`${toNumber}(${v})`));
  }
}

/** The `x-code` nearest to where an error's keyword sits in the schema (its own subschema first). */
function codeOf(err: ErrorObject, root: Schema): ErrorCode {
  const path = err.schemaPath.replace(/^#\//, '').split('/');
  // A missing required property is the property's own problem.
  if (err.keyword === 'required') path.splice(path.length - 1, 1, 'properties', (err.params as { missingProperty: string }).missingProperty);
  let node: unknown = root;
  let code: ErrorCode = 'BAD_FIELD_TYPE';
  for (const seg of path) {
    if (node === null || typeof node !== 'object') break;
    const x = (node as Schema)['x-code'];
    if (typeof x === 'string') code = x as ErrorCode;
    node = (node as Schema)[seg];
  }
  if (node !== null && typeof node === 'object' && typeof (node as Schema)['x-code'] === 'string') code = (node as Schema)['x-code'] as ErrorCode;
  return code;
}

/**
 * Validate an OpenRTB 2.5/2.6 BidRequest against openrtb/schema/bid-request.schema.json, compiled
 * with ajv (allErrors, so the most basic problem can be named), plus the one rule JSON Schema
 * cannot state: imp ids are unique (§3.2.4). Throws a BidderError with the code the schema gives
 * the failing field; returns the request typed, within the limits: its first `maxImps` imps only,
 * and `tmax` at most `maxTmaxMs`.
 */
export function createValidator(limits: ValidateLimits) {
  const schema = structuredClone(SCHEMA);
  // Two compilations of one schema. `check` answers whether a request passes: each definition a
  // `$ref` names is a function of its own (`inlineRefs: false`), since inlined the whole schema is
  // one function too large for V8 to optimise (its bytecode past TurboFan's limit, it ran in
  // baseline code: ~1.5-2.8 µs a bench request against ~0.2). `explain` runs only on a request
  // `check` refused, inlined so every error's `schemaPath` reads from the root, where `codeOf`
  // finds its `x-code`; `x-coerce` rewrites the same way twice. It is compiled in the loop turn
  // after this one (35-120 ms), during the bidder's start rather than at the first refusal, where
  // it would hold every request in flight; a refusal before then compiles it itself.
  const compile = (inlineRefs: boolean) => {
    const ajv = new Ajv({ allErrors: true, strict: true, strictNumbers: true, allowUnionTypes: true, inlineRefs });
    ajv.addKeyword({ keyword: 'x-code', schemaType: 'string' });
    ajv.addKeyword({
      keyword: 'x-coerce',
      type: 'object',
      schemaType: 'object',
      metaSchema: { type: 'object', additionalProperties: { enum: ['string', 'number'] } },
      before: 'properties',
      code: coerceCode,
    });
    return ajv.compile(schema);
  };
  const check = compile(false);
  let explain: ReturnType<typeof compile> | null = null;
  const explainer = () => (explain ??= compile(true));
  setImmediate(explainer).unref();

  return function validateRequest(v: unknown): BidRequest {
    // Imps past maxImps get no bid, so they are dropped before the schema walks them: a request's
    // cost after the parse is bounded by maxImps however many it carries (the body limits bound
    // the parse), and the imps it can bid on are still bid.
    const imp = v !== null && typeof v === 'object' ? (v as { imp?: unknown }).imp : undefined;
    if (Array.isArray(imp) && imp.length > limits.maxImps) imp.length = limits.maxImps;
    if (!check(v)) {
      const explained = explainer();
      explained(v);
      let best: { code: ErrorCode; err: ErrorObject } | null = null;
      for (const err of explained.errors!) {
        const code = codeOf(err, schema);
        if (!best || PRIORITY.indexOf(code) < PRIORITY.indexOf(best.code)) best = { code, err };
      }
      const { code, err } = best!;
      // The four media are the schema's alternatives, each missing one refused as "must have
      // required property 'banner'" (or video, ...): read as one of them being required.
      const why = code === 'NO_MEDIA' && err.keyword === 'required' ? 'has none' : err.message;
      throw new BidderError(code, `${err.instancePath || 'request'} ${why}`);
    }
    // A longer tmax than the bidder works to is answered within its own limit, not refused.
    const req = v as { tmax?: number | null };
    if (typeof req.tmax === 'number' && req.tmax > limits.maxTmaxMs) req.tmax = limits.maxTmaxMs;
    const imps = (v as { imp: Array<{ id: string }> }).imp;
    if (imps.length > 1) {
      const seen = new Set<string>();
      for (const imp of imps) {
        if (seen.has(imp.id)) throw new BidderError('DUPLICATE_IMP_ID', JSON.stringify(imp.id));
        seen.add(imp.id);
      }
    }
    return v as BidRequest;
  };
}
