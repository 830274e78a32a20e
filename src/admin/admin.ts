import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { BidderError } from '../errors/codes.js';
import { errorAnswer, type Answer } from '../errors/answer.js';
import type { OverCommitted } from '../types.js';
import type { RateChange } from '../config/policies.js';

/**
 * An action refused. With workers, one a worker refused after this one took it: the workers that
 * took it are put back, and `stillApplied` names those where that was refused too (they keep the
 * action, the others do not); absent or empty, every worker is as before.
 */
export type Refusal = { ok: false; problems: string[]; stillApplied?: string[] };

export interface AdminDeps {
  /** Bearer token; empty turns every admin route off. */
  token: string;
  /** `overCommitted`: campaigns whose spend and open reservations of today pass their new budget. */
  reloadPolicies: () => Promise<{ ok: true; overCommitted: OverCommitted[]; restartNeeded: string[]; rateChanges?: RateChange[] } | Refusal>;
  reloadModel: (version?: string) => Promise<{ ok: true; version: string } | Refusal>;
  /** `unknownCampaign`: no campaign of that id serves (nor, for a resume, is one paused). */
  pause: (campaignId: string, paused: boolean) => Promise<{ ok: true } | { ok: false; unknownCampaign: true } | Refusal>;
  status: () => unknown;
  /** A request refused for its bearer token (bidder_request_errors_total, as the bid routes' refusals). */
  onRefused: (code: 'ADMIN_UNAUTHORIZED') => void;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
}

/** A wrong token is logged at most once a minute, with the number refused since the last line. */
const UNAUTHORIZED_LOG_MS = 60_000;

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
 * A refused action answers 409 with every problem and leaves the running state as it was, or says
 * which workers it could not put back (`Refusal`). Each action is logged at info with its result;
 * refused tokens are counted and logged at warn, at most once a minute.
 */
export function createAdmin(deps: AdminDeps) {
  const { logger } = deps;
  // Hashed first so the comparison takes the same time whatever the length of either side.
  const want = createHash('sha256').update(deps.token).digest();
  function authorized(header: string): boolean {
    // RFC 7235 §2.1: the scheme is case-insensitive (`bearer` and `BEARER` are Bearer), and one or
    // more spaces part it from the token. The token itself is compared exactly.
    const m = /^bearer +/i.exec(header);
    const token = m === null ? '' : header.slice(m[0].length);
    return timingSafeEqual(createHash('sha256').update(token).digest(), want) && m !== null;
  }
  // Refused since the last line; a timer while a minute since that line has not passed.
  let unlogged = 0;
  let minute: NodeJS.Timeout | null = null;
  function unauthorized(): Answer {
    deps.onRefused('ADMIN_UNAUTHORIZED');
    if (minute !== null) {
      unlogged++;
    } else {
      logger.warn({ refused: 1 }, 'admin request refused: bearer token missing or wrong (said at most once a minute, with the number refused since)');
      const close = (): void => {
        if (unlogged === 0) {
          minute = null;
          return;
        }
        logger.warn({ refused: unlogged }, 'admin requests refused in the last minute: bearer token missing or wrong');
        unlogged = 0;
        minute = setTimeout(close, UNAUTHORIZED_LOG_MS).unref();
      };
      minute = setTimeout(close, UNAUTHORIZED_LOG_MS).unref();
    }
    return errorAnswer(new BidderError('ADMIN_UNAUTHORIZED'));
  }
  /** The log line of an action: at info, or at error where it left the workers serving different things. */
  function logged(fields: Record<string, unknown>, r: { ok: true } | { ok: false; unknownCampaign: true } | Refusal): void {
    if (r.ok) logger.info({ ...fields, result: 'ok' }, 'admin action');
    else if ('unknownCampaign' in r) logger.info({ ...fields, result: 'unknown campaign' }, 'admin action');
    else if (r.stillApplied?.length) logger.error({ ...fields, result: 'workers split', problems: r.problems, stillApplied: r.stillApplied }, 'admin action refused by a worker and not undone on all: the workers serve different states until it is asked again');
    else logger.info({ ...fields, result: 'refused', problems: r.problems }, 'admin action');
  }
  /** The policy reload, logged; `signal`: the one that asked for it (SIGHUP), where not the route. */
  async function reloadPolicies(signal?: string): ReturnType<AdminDeps['reloadPolicies']> {
    const r = await deps.reloadPolicies();
    logged({ action: 'reload policies', ...(signal ? { signal } : {}), ...(r.ok ? { overCommitted: r.overCommitted.length, restartNeeded: r.restartNeeded, ...(r.rateChanges?.length ? { rateChanges: r.rateChanges } : {}) } : {}) }, r);
    return r;
  }
  const failed = (reason: string, r: Refusal): Answer =>
    errorAnswer(new BidderError('ADMIN_FAILED', undefined, { reason, extra: r.stillApplied?.length ? { problems: r.problems, stillApplied: r.stillApplied } : { problems: r.problems } }));
  async function handleAdmin(method: string, path: string, authorization: string, body: Buffer): Promise<Answer> {
    if (!deps.token) return errorAnswer(new BidderError('ADMIN_DISABLED'));
    if (!authorized(authorization)) return unauthorized();
    // The route first, then its method: an unknown path is 404 whatever the method, a known one
    // asked with the wrong method 405.
    const campaign = /^\/admin\/campaigns\/([^/]+)\/(pause|resume)$/.exec(path);
    const wants = path === '/admin/status' ? 'GET' : path === '/admin/reload/policies' || path === '/admin/reload/model' || campaign ? 'POST' : '';
    if (wants === '') return errorAnswer(new BidderError('NOT_FOUND'));
    if (method !== wants) return errorAnswer(new BidderError('METHOD_NOT_ALLOWED'));
    if (path === '/admin/status') return json(200, deps.status());
    if (path === '/admin/reload/policies') {
      const r = await reloadPolicies();
      if (r.ok) return json(200, r);
      return failed(r.stillApplied?.length ? `policies refused by a worker and not swapped back on ${r.stillApplied.join(', ')}, which serve the new policies while the other workers serve those that ran before; reload again once the problems are fixed` : 'policies refused; the running policies stay', r);
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
      // The version asked (none: the one models/CURRENT names), and the one loaded.
      logged({ action: 'reload model', version: version ?? 'CURRENT', ...(r.ok ? { loaded: r.version } : {}) }, r);
      if (r.ok) return json(200, r);
      return failed(r.stillApplied?.length ? `model refused by a worker and not swapped back on ${r.stillApplied.join(', ')}, which serve the new model while the other workers serve the one that ran before; reload again once the problems are fixed` : 'model refused; the running model stays', r);
    }
    const m = campaign as RegExpExecArray;
    let id: string;
    try {
      id = decodeURIComponent(m[1]);
    } catch {
      return errorAnswer(new BidderError('ADMIN_BAD_REQUEST', 'malformed percent-escape in the campaign id'));
    }
    const pause = m[2] === 'pause';
    const r = await deps.pause(id, pause);
    logged({ action: m[2], campaign: id }, r);
    if (r.ok) return json(200, { ok: true, campaign: id, paused: pause });
    if ('unknownCampaign' in r) return errorAnswer(new BidderError('UNKNOWN_CAMPAIGN', undefined, { reason: `no campaign ${id} in the serving policies` }));
    const done = pause ? 'paused' : 'resumed';
    return failed(r.stillApplied?.length ? `campaign ${id} ${done} on ${r.stillApplied.join(', ')} only: a worker refused, and putting it back was refused there too; ask again once the problems are fixed` : `campaign ${id} not ${done} (nothing changed): ${r.problems.join('; ')}`, r);
  }
  // The route's reload without its token, for a signal: whoever can signal the process owns it.
  return Object.assign(handleAdmin, { reloadPolicies });
}
