/**
 * Reading a policy file and saying what is wrong with it: `readDoc` parses one file (every syntax
 * error, each with its line), `validate` checks it against its schema and says which values passed
 * (`passed`), so that the cross checks run on those whatever else failed, and `PolicyError` carries
 * every problem of a set in one message. With the merging of settings over their defaults and the
 * deep freezing of a checked set, shared by `loadPolicies`, `readSettings` and the off-thread load.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { parseDocument } from 'yaml';
import type { Policies } from './policies.js';

/** Every problem found in a policy set, reported together. */
export class PolicyError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid policies (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  - ${problems.join('\n  - ')}`);
    this.problems = problems;
  }
}

/** The value at a JSON pointer of `doc` (ajv's `instancePath`). */
function at(doc: unknown, path: string): unknown {
  let v = doc;
  for (const seg of path.split('/').slice(1)) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[seg.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
  return v;
}

function describe(file: string, errors: ErrorObject[] | null | undefined, doc: unknown): string[] {
  // A bad key is reported by its own error, which names it, and again by a `propertyNames` one that does not.
  return (errors ?? []).filter((e) => e.keyword !== 'propertyNames').map((e) => {
    const where = (e.instancePath || '/') + (e.propertyName !== undefined ? ` key '${e.propertyName}'` : '');
    const value = e.keyword === 'type' ? at(doc, e.instancePath) : undefined;
    const extra =
      e.keyword === 'additionalProperties'
        ? ` (${(e.params as { additionalProperty: string }).additionalProperty})`
        : e.keyword === 'enum'
          ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')})`
          : // YAML's .inf and .nan read as numbers the schema refuses: "must be number" alone hid which.
            typeof value === 'number' && !Number.isFinite(value)
            ? ` (got ${value})`
            : '';
    return `${file}: ${where} ${e.message}${extra}`;
  });
}

/** A key as a segment of a JSON pointer (RFC 6901), as ajv writes `instancePath`. */
export const pointer = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1');

export const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Whether the value at a JSON pointer passed its schema, by the errors of the validation: none is
 * about the value, about anything inside it, or about a value it is inside (a list that is not
 * one). An error about a key (missing, not allowed, a bad name) is about the value at that key.
 */
function passed(errors: ErrorObject[] | null | undefined): (path: string) => boolean {
  if (!errors?.length) return () => true;
  const at = new Set<string>();
  const within = new Set<string>();
  for (const e of errors) {
    const p = e.params as { missingProperty?: string; additionalProperty?: string; propertyName?: string };
    const key = e.propertyName ?? p.missingProperty ?? p.additionalProperty ?? p.propertyName;
    const path = key === undefined ? e.instancePath : `${e.instancePath}/${pointer(key)}`;
    at.add(path);
    for (let q = path; ; q = q.slice(0, q.lastIndexOf('/'))) {
      within.add(q);
      if (q === '') break;
    }
  }
  return (path) => {
    if (within.has(path)) return false;
    for (let q = path; q !== ''; ) {
      q = q.slice(0, q.lastIndexOf('/'));
      if (at.has(q)) return false;
    }
    return true;
  };
}

/** Validates one file's document: its schema problems go on `problems`; the answer says which of its values passed. */
export function validate(file: string, check: ValidateFunction, doc: unknown, problems: string[]): (path: string) => boolean {
  if (doc === undefined || check(doc)) return () => true;
  problems.push(...describe(file, check.errors, doc));
  return passed(check.errors);
}

export function readDoc(dir: string, name: string, problems: string[], required: boolean): unknown {
  for (const ext of ['.yaml', '.yml', '.json']) {
    const path = join(dir, name + ext);
    if (!existsSync(path)) continue;
    // Every syntax error the parser recovers past, each with its line: the first alone hid the others.
    const why = (message: string) => `${name}${ext}: cannot parse: ${message.split('\n')[0].replace(/:$/, '')}`;
    try {
      const doc = parseDocument(readFileSync(path, 'utf8'));
      // As yaml's parse did (an unresolved tag, say): a warning of the process, not a problem.
      for (const w of doc.warnings) process.emitWarning(w);
      if (doc.errors.length === 0) {
        const value: unknown = doc.toJS();
        if (isRecord(value)) return value;
        // Every policy file is a mapping at its top: a list or a lone value is said to be one, not
        // as the schema's "/ must be object" or, merged into the defaults, "additional properties (0)".
        if (value === null || value === undefined) {
          if (required) problems.push(`${name}${ext}: empty: it must hold a mapping (${name === 'campaigns' ? 'campaigns: [...]' : name === 'exchanges' ? 'exchanges: {...}' : 'ratesPerUsd: {...}'})`);
        } else problems.push(`${name}${ext}: must hold a mapping of keys at its top, not ${Array.isArray(value) ? 'a list' : `a ${typeof value}`}`);
        return undefined;
      }
      problems.push(...doc.errors.map((e) => why(e.message)));
    } catch (err) {
      // Unreadable, or an alias bomb toJS refuses.
      problems.push(why((err as Error).message));
    }
    return undefined;
  }
  if (required) problems.push(`${name}.yaml: missing from ${dir}`);
  return undefined;
}

export function deepMerge<T>(base: T, over: Record<string, unknown>): T {
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object'
        ? deepMerge(b, v as Record<string, unknown>)
        : v;
  }
  return out as T;
}

/** A policy set passed between worker threads arrives as a structured clone, no longer frozen. */
export function freezePolicies(p: Policies): Policies {
  return deepFreeze(p);
}

export function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}
