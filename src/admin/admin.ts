import { createHash, timingSafeEqual } from 'node:crypto';
import { BidderError } from '../errors/codes.js';
import { errorAnswer, type Answer } from '../errors/answer.js';
import type { OverCommitted } from '../types.js';

export interface AdminDeps {
  /** Bearer token; empty turns every admin route off. */
  token: string;
  /** `overCommitted`: campaigns whose spend and open reservations of today pass their new budget. */
  reloadPolicies: () => Promise<{ ok: true; overCommitted: OverCommitted[]; restartNeeded: string[] } | { ok: false; problems: string[] }>;
  reloadModel: (version?: string) => Promise<{ ok: true; version: string } | { ok: false; problems: string[] }>;
  /** False for an unknown campaign. */
  pause: (campaignId: string, paused: boolean) => boolean | Promise<boolean>;
  status: () => unknown;
}

/** What a model version may be called (as src/model/store.ts checks its own names). */
const VERSION_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function json(status: number, v: unknown): Answer {
  return { status, body: JSON.stringify(v) };
}

/**
 * Admin routes, all behind a bearer token:
 *   GET  /admin/status
 *   POST /admin/reload/policies
 *   POST /admin/reload/model            body: {"version": "..."} (optional; default models/CURRENT)
 *   POST /admin/campaigns/{id}/pause | /resume
 * A refused reload answers 409 with every problem and leaves the running state as it was.
 */
export function createAdmin(deps: AdminDeps) {
  // Hashed first so the comparison takes the same time whatever the length of either side.
  const want = createHash('sha256').update(`Bearer ${deps.token}`).digest();
  function authorized(header: string): boolean {
    return timingSafeEqual(createHash('sha256').update(header).digest(), want);
  }
  return async function handleAdmin(method: string, path: string, authorization: string, body: Buffer): Promise<Answer> {
    if (!deps.token) return errorAnswer(new BidderError('ADMIN_DISABLED'));
    if (!authorized(authorization)) return errorAnswer(new BidderError('ADMIN_UNAUTHORIZED'));
    // The route first, then its method: an unknown path is 404 whatever the method, a known one
    // asked with the wrong method 405.
    const campaign = /^\/admin\/campaigns\/([^/]+)\/(pause|resume)$/.exec(path);
    const wants = path === '/admin/status' ? 'GET' : path === '/admin/reload/policies' || path === '/admin/reload/model' || campaign ? 'POST' : '';
    if (wants === '') return errorAnswer(new BidderError('NOT_FOUND'));
    if (method !== wants) return errorAnswer(new BidderError('METHOD_NOT_ALLOWED'));
    if (path === '/admin/status') return json(200, deps.status());
    if (path === '/admin/reload/policies') {
      const r = await deps.reloadPolicies();
      return r.ok ? json(200, r) : errorAnswer(new BidderError('ADMIN_FAILED', undefined, { reason: 'policies refused; the running policies stay', extra: { problems: r.problems } }));
    }
    if (path === '/admin/reload/model') {
      let version: string | undefined;
      if (body.length) {
        try {
          const v = JSON.parse(body.toString('utf8')) as { version?: unknown };
          // "x", [] or 5 is not a request for the default model.
          if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('body');
          if (v.version !== undefined && typeof v.version !== 'string') throw new Error('version');
          version = v.version as string | undefined;
          // A version name, never a path: the models folder is the only place models load from.
          if (version !== undefined && !VERSION_NAME.test(version)) {
            return errorAnswer(new BidderError('ADMIN_BAD_REQUEST', 'version must be a version name in the models folder ([A-Za-z0-9][A-Za-z0-9._-]*), not a path'));
          }
        } catch {
          return errorAnswer(new BidderError('ADMIN_BAD_REQUEST', 'body must be {"version": "<name>"}'));
        }
      }
      const r = await deps.reloadModel(version);
      return r.ok ? json(200, r) : errorAnswer(new BidderError('ADMIN_FAILED', undefined, { reason: 'model refused; the running model stays', extra: { problems: r.problems } }));
    }
    const m = campaign as RegExpExecArray;
    let id: string;
    try {
      id = decodeURIComponent(m[1]);
    } catch {
      return errorAnswer(new BidderError('ADMIN_BAD_REQUEST', 'malformed percent-escape in the campaign id'));
    }
    let found: boolean;
    try {
      found = await deps.pause(id, m[2] === 'pause');
    } catch (err) {
      return errorAnswer(new BidderError('ADMIN_FAILED', undefined, { reason: `not ${m[2]}d: ${(err as Error).message}`, extra: { problems: [(err as Error).message] } }));
    }
    return found ? json(200, { ok: true, campaign: id, paused: m[2] === 'pause' }) : errorAnswer(new BidderError('NOT_FOUND', `campaign ${id}`));
  };
}
