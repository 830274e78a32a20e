/**
 * Reading bidder.yaml: the document over the defaults (settings.ts), then the flags and the
 * environment, checked against its schema and then for the combinations the schema cannot say
 * (`settingsProblems`). `settingsOf` is the part `loadPolicies` runs among the other files;
 * `readSettings` reads the settings alone, for callers that need no campaign.
 */
import { existsSync } from 'node:fs';
import { DEFAULT_SETTINGS, adminTokenProblem, noticeSecretProblem, type Settings } from './settings.js';
import { validators } from './policy-schemas.js';
import { PolicyError, deepFreeze, deepMerge, readDoc, validate } from './policy-files.js';
import { withoutCredentials } from '../util/url.js';

/**
 * bidder.yaml's document over the defaults, then `overrides`; its problems go on `problems`, and
 * `passed` says which of its values (JSON pointers: `/ledger/journalPath`) passed their schema.
 */
export function settingsOf(setDoc: unknown, overrides: Partial<Settings>, problems: string[]): { settings: Settings; passed: (path: string) => boolean } {
  const merged = deepMerge(deepMerge(DEFAULT_SETTINGS, setDoc as Record<string, unknown>), overrides as Record<string, unknown>);
  const fine = validate('bidder.yaml (with flags and environment)', validators.settings, merged, problems);
  problems.push(...settingsProblems(merged, fine));
  return { settings: merged, passed: fine };
}

/**
 * The settings alone (bidder.yaml with `overrides`), as `loadPolicies` would give them, for a caller
 * that needs no campaign: the campaigns file of a large catalog takes seconds to parse (YAML),
 * bidder.yaml milliseconds. With the settings' problems, and `passed`: whether a value (a JSON
 * pointer: `/modelsDir`) was read and passed its schema, so that a check needing it runs while
 * other settings are wrong. Where bidder.yaml cannot be parsed (`read` false) only the values
 * `overrides` set (a flag's, the environment's) did, whatever the file says: a `serve --models M`
 * checks M's model all the same. Throws a PolicyError where the directory does not exist.
 */
export function readSettings(dir: string, overrides: Partial<Settings> = {}): { settings: Settings; problems: string[]; passed: (path: string) => boolean; read: boolean } {
  const problems: string[] = [];
  if (!existsSync(dir)) throw new PolicyError([`policy directory ${dir} does not exist`]);
  const doc = readDoc(dir, 'bidder', problems, false);
  const read = problems.length === 0;
  const { settings, passed } = settingsOf(doc ?? {}, overrides, problems);
  return { settings: deepFreeze(settings), problems, passed: read ? passed : (path) => overridden(overrides, path) && passed(path), read };
}

/** Whether `overrides` set the value at a JSON pointer (`/ledger/redisUrl`) whole: not an object it only adds keys to. */
function overridden(overrides: Partial<Settings>, path: string): boolean {
  let v: unknown = overrides;
  for (const key of path.split('/').slice(1)) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
    v = (v as Record<string, unknown>)[key.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return v !== undefined && (v === null || typeof v !== 'object' || Array.isArray(v));
}

/**
 * What the settings' schema cannot say: combinations that start a bidder that cannot work (every
 * bid's notices pointing nowhere, the ops listener taking the bid port, an admin token no header
 * can carry) or that works other than asked (plain HTTP with half a TLS pair, one bidder pacing a
 * fleet's share). Each is checked where the values it reads passed their schema (`passed`). Not
 * what only the host serving can check: the TLS files are `serve`'s to read (src/cli/serve.ts), and
 * report, train or a reload on a host without them reads the same policies.
 */
function settingsProblems(s: Settings, passed: (path: string) => boolean): string[] {
  const where = 'bidder.yaml (with flags and environment)';
  const ok = (...paths: string[]) => paths.every(passed);
  const out: string[] = [];
  let url: URL | null = null;
  try {
    url = new URL(s.publicUrl);
  } catch {
    // reported below
  }
  if (ok('/publicUrl') && (url === null || url.hostname === '' || /\s/.test(s.publicUrl))) out.push(`${where} /publicUrl: ${JSON.stringify(s.publicUrl)} is not a URL with a host: every notice would point nowhere`);
  if (ok('/opsPort', '/port') && s.opsPort !== 0 && s.opsPort === s.port) out.push(`${where} /opsPort: ${s.opsPort} is the bid port too; give the operations listener a port of its own, or 0 to share the bid port`);
  if (ok('/tls') && (s.tls.keyFile === '') !== (s.tls.certFile === '')) out.push(`${where} /tls: keyFile and certFile go together (one alone would serve plain HTTP)`);
  // Deadlines that contradict each other: every request without tmax, or every one, a no-bid.
  if (ok('/minTmaxMs', '/maxTmaxMs') && s.minTmaxMs > s.maxTmaxMs) out.push(`${where} /minTmaxMs: ${s.minTmaxMs} is above maxTmaxMs ${s.maxTmaxMs}: every request would be refused or not worth starting`);
  if (ok('/defaultTmaxMs', '/minTmaxMs', '/maxTmaxMs') && (s.defaultTmaxMs < s.minTmaxMs || s.defaultTmaxMs > s.maxTmaxMs)) out.push(`${where} /defaultTmaxMs: ${s.defaultTmaxMs} is outside minTmaxMs..maxTmaxMs (${s.minTmaxMs}..${s.maxTmaxMs}): every request without tmax would be a no-bid`);
  if (ok('/batcher/maxQueueDelayUs', '/defaultTmaxMs') && s.batcher.maxQueueDelayUs >= s.defaultTmaxMs * 1000) out.push(`${where} /batcher/maxQueueDelayUs: ${s.batcher.maxQueueDelayUs} µs is not under defaultTmaxMs (${s.defaultTmaxMs} ms): a request would wait its whole deadline for a batch`);
  if (ok('/ledger/redisUrl') && s.ledger.redisUrl && !/^rediss?:\/\/[^/\s]/.test(s.ledger.redisUrl)) out.push(`${where} /ledger/redisUrl: ${JSON.stringify(withoutCredentials(s.ledger.redisUrl))} is not a redis:// or rediss:// (TLS) URL with a host`);
  const token = ok('/adminToken') ? adminTokenProblem(s.adminToken) : null;
  if (token !== null) out.push(`${where} /adminToken: ${token}`);
  const secret = ok('/noticeSecret') ? noticeSecretProblem(s.noticeSecret) : null;
  if (secret !== null) out.push(`${where} /noticeSecret: ${secret}`);
  if (ok('/noticeSecretPrevious'))
    s.noticeSecretPrevious.forEach((prev, i) => {
      const problem = noticeSecretProblem(prev, `each previous notice secret (noticeSecretPrevious, NOTICE_SECRET_PREVIOUS)`);
      if (problem !== null) out.push(`${where} /noticeSecretPrevious/${i}: ${problem}`);
    });
  if (ok('/fleetSize', '/ledger/redisUrl') && s.fleetSize > 1 && !s.ledger.redisUrl) out.push(`${where} /fleetSize: ${s.fleetSize} bidders share budgets through a Redis ledger (ledger.redisUrl, --redis); alone, fleetSize is 1`);
  return out;
}
