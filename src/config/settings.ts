/**
 * Runtime settings of one bidder process: one defaults object with units in the names, merged
 * with `policies/bidder.yaml`, environment and flags, validated once with every problem reported
 * together, then frozen (as fastify does with its options).
 */
export interface Settings {
  host: string;
  port: number;
  /**
   * 0 (default): /metrics and /admin on \`port\`, answering loopback clients only. Otherwise a
   * listener of their own on opsHost:opsPort (plain HTTP, any client that reaches it; /healthz and
   * /readyz too), and none of them on the public port.
   */
  opsPort: number;
  opsHost: string;
  /** Raw request body limit (413 past it). */
  maxBodyBytes: number;
  /** Limit after gzip inflation (a gzip bomb stops here). */
  maxDecompressedBytes: number;
  maxJsonDepth: number;
  /** Most imps of one bid request that are planned; those after get no bid, cut before validation walks them. */
  maxImps: number;
  /** Most bids one response carries (the best ones by bid); each reserves budget until its notice. */
  maxBidsPerResponse: number;
  /** Most USD one request's bids may reserve together (the best bids first). */
  maxReservedUsdPerRequest: number;
  /**
   * Most candidates scored per imp. An imp with more eligible keeps this many by the rule in
   * src/eligibility/shortlist.ts (highest bid at a prior pCTR, one in eight by rotation).
   */
  maxCandidatesPerImp: number;
  /** tmax used when the request has none (OpenRTB 2.6 §3.2.1). */
  defaultTmaxMs: number;
  /** Requests with tmax below this are not worth starting: immediate no-bid. */
  minTmaxMs: number;
  maxTmaxMs: number;
  batcher: { maxBatchRows: number; maxQueueDelayUs: number };
  /** How long an issued bid's notices stay valid and its reservation is held. */
  noticeTtlMs: number;
  /**
   * How long after a click its conversion is attributed: the conversion token the click mints is
   * valid this long (src/notices/notices.ts), and conversions are counted in metrics for
   * noticeTtlMs + this. Advertisers attribute over 1, 7 or 30 days; 1 minute to 90 days.
   */
  conversionWindowMs: number;
  /** Public base URL of this bidder, used in nurl/burl/lurl and click URLs. */
  publicUrl: string;
  /** PEM files to serve HTTPS directly (both set) instead of HTTP; empty = plain HTTP (TLS at a proxy). */
  tls: { keyFile: string; certFile: string };
  /** HMAC key for notice URLs. */
  noticeSecret: string;
  /**
   * Notice secrets replaced by `noticeSecret`, still taken when checking a signature (notices,
   * click and impression URLs, conversion tokens) and never used to sign: a rotation keeps the
   * notices of the bids signed before it. Environment: NOTICE_SECRET_PREVIOUS, comma-separated
   * (`secretList`). docs/money.md, "Rotating the notice secret".
   */
  noticeSecretPrevious: string[];
  /**
   * Issue one signature for a bid's win, billing and loss URLs, as versions before the per-route
   * tags did (they verify nothing else): only while a fleet is rolled onto this version from such
   * a one, so that its notices reaching processes not yet upgraded are not refused as forged.
   */
  sharedNoticeSignature: boolean;
  /**
   * The bidder's IAB Global Vendor List id. Under GDPR, user data is used only with consent to
   * TCF purposes 1, 3 and 4 and to this vendor; 0 (not registered) = never under GDPR.
   */
  tcfVendorId: number;
  /** Bearer token for admin routes; empty = admin routes off. Otherwise as `adminTokenProblem` says. */
  adminToken: string;
  eventLog: { dir: string; rotateBytes: number; keepBytes: number; enabled: boolean };
  /**
   * Journal folder (one process) or Redis URL and key prefix (a fleet; one prefix per deployment).
   * autoPipelining: commands issued in one event-loop tick leave in one write (fewer Redis round
   * trips; a batch waits for the one in flight, which can lengthen the tail under load).
   * commandTimeoutMs: a Redis command unanswered this long fails (the bid becomes a no-bid).
   * syncWindowMs (journal): a settlement's fdatasync starts up to this long after the first one
   * waiting, shared by all written meanwhile (group commit); notices are answered that much later,
   * and still only once their settlement is on disk. 0: each sync starts at once.
   */
  ledger: { journalPath: string; redisUrl: string; keyPrefix: string; autoPipelining: boolean; commandTimeoutMs: number; syncWindowMs: number };
  modelsDir: string;
  /** Model version to load; '' = the one named in `<modelsDir>/CURRENT`. */
  modelVersion: string;
  backend: 'auto' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Seed for the pacer's and explorer's random source ('' = from the clock). */
  seed: string;
  /**
   * 'value' (default): each campaign's `budget.pacing` mode, max-value by default (docs/pacing.md);
   * 'curve': the earlier pacer for every campaign (spend along a target curve), for comparison.
   */
  pacer: 'value' | 'curve';
  /** Grace period for in-flight requests on SIGTERM. */
  shutdownGraceMs: number;
  /**
   * Bidder processes sharing the Redis ledger, 0 (the default): as many as the ledger sees live,
   * read every `fleetSyncMs` (src/pace/ledger-sync.ts, `createFleetShare`). Each paces its share of
   * every budget (its part of the fleet's bid requests, 1/N while unmeasured) and re-reads the
   * fleet's spend every `fleetSyncMs`. A number N is kept as set (1/N each, the traffic aside),
   * and a live count unlike it is warned of. A bidder alone
   * (no Redis) paces the whole budget and re-reads its ledger as often: the pacer counts each win at
   * the price it first settled at, and the ledger alone holds the price a later notice set (a
   * billing notice after a VAST impression tracker's render at the bid).
   */
  fleetSize: number;
  fleetSyncMs: number;
  /**
   * Fleet: how long a user's frequency-cap counts and profile loaded from Redis are trusted
   * locally; within it this bidder does not see what other bidders recorded for that user.
   */
  userCacheTtlMs: number;
  /**
   * Alone (no Redis): users whose frequency-cap impressions the process keeps (about 190 bytes each
   * with one impression). Past it, users none of whose impressions is inside its campaign's cap
   * window go first; a user whose caps still hold dropped is counted in
   * bidder_frequency_evictions_total and may be bid on again within the window.
   */
  frequencyMaxUsers: number;
  /**
   * Alone (no Redis): how often the frequency caps are written to `freqcaps.json` besides at
   * shutdown, ms (0: only at shutdown). A crash (kill -9) loses the impressions counted since the
   * last write: before, written only at shutdown, it lost every cap.
   */
  frequencySaveMs: number;
  /** Alone (no Redis): user profiles (the model's seen and clicked categories) kept, least recently used dropped first. */
  profileMaxUsers: number;
  /**
   * Extended-id sources (`user.eids[].source`) a user may be known by where the request has no
   * buyeruid and no advertising id, first listed first: ids stable enough to count caps by.
   */
  eidSources: string[];
}

/**
 * The secrets of a comma-separated list (NOTICE_SECRET_PREVIOUS), each trimmed, empty ones
 * dropped. A secret holding a comma or edge whitespace is listed in bidder.yaml instead.
 */
export function secretList(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/**
 * Why an admin token cannot be used, or null (an empty one turns admin off). Short ones are
 * guessed, as a notice secret would be (16 characters, src/notices/sign.ts). Whitespace or a
 * control character is a trailing newline (a Kubernetes secret file's) or a paste gone wrong:
 * no header can carry it (HTTP trims a value's ends and forbids control characters), so every
 * admin call would be a 401, found only when admin is needed.
 * The token is not echoed: it is a secret.
 */
export function adminTokenProblem(token: string): string | null {
  if (token === '') return null;
  const bad = /[\s\p{Cc}]/u.exec(token);
  if (token.length >= 16 && bad === null) return null;
  const found = bad === null ? `${token.length} character${token.length === 1 ? '' : 's'}` : `U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} at character ${bad.index + 1}`;
  return `the admin bearer token (ADMIN_TOKEN) must be 16 characters or more, with no whitespace or control character (found ${found}); leave it empty to turn the admin routes off`;
}

/**
 * Why a notice secret (noticeSecret / NOTICE_SECRET, or one of noticeSecretPrevious) cannot be
 * used, or null. Empty: none configured (one is generated and kept). Whitespace or a control
 * character is refused for the admin token's reason and one more: the secret is taken byte for
 * byte, so a fleet where one process read it with a secret file's trailing newline signs with
 * another key, and the others refuse its notices as forged (403: billed, never recorded), with no
 * word at start. The secret is not echoed.
 */
export function noticeSecretProblem(secret: string, name = 'the notice secret (NOTICE_SECRET)'): string | null {
  if (secret === '') return null;
  const bad = /[\s\p{Cc}]/u.exec(secret);
  if (secret.length >= 16 && bad === null) return null;
  const found = bad === null ? `${secret.length} character${secret.length === 1 ? '' : 's'}` : `U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} at character ${bad.index + 1}`;
  return `${name} must be 16 characters or more, with no whitespace or control character (found ${found}); every process of a fleet must use the same bytes`;
}

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  host: '0.0.0.0',
  port: 8080,
  opsPort: 0,
  opsHost: '127.0.0.1',
  maxBodyBytes: 256 * 1024,
  maxDecompressedBytes: 256 * 1024,
  maxJsonDepth: 32,
  maxImps: 20,
  maxBidsPerResponse: 10,
  maxReservedUsdPerRequest: 0.1,
  maxCandidatesPerImp: 16,
  defaultTmaxMs: 200,
  minTmaxMs: 10,
  maxTmaxMs: 10_000,
  batcher: Object.freeze({ maxBatchRows: 256, maxQueueDelayUs: 500 }),
  noticeTtlMs: 10 * 60 * 1000,
  conversionWindowMs: 7 * 24 * 60 * 60 * 1000,
  publicUrl: 'http://127.0.0.1:8080',
  tls: Object.freeze({ keyFile: '', certFile: '' }),
  noticeSecret: '',
  noticeSecretPrevious: Object.freeze([] as string[]),
  sharedNoticeSignature: false,
  tcfVendorId: 0,
  adminToken: '',
  eventLog: Object.freeze({ dir: 'var/events', rotateBytes: 64 * 1024 * 1024, keepBytes: 16 * 1024 ** 3, enabled: true }),
  ledger: Object.freeze({ journalPath: 'var/ledger.journal', redisUrl: '', keyPrefix: 'bidder:ledger:', autoPipelining: true, commandTimeoutMs: 100, syncWindowMs: 2 }),
  modelsDir: 'models',
  modelVersion: '',
  backend: 'auto',
  logLevel: 'info',
  seed: '',
  pacer: 'value',
  shutdownGraceMs: 5_000,
  fleetSize: 0,
  fleetSyncMs: 5_000,
  userCacheTtlMs: 1_000,
  frequencyMaxUsers: 1_000_000,
  frequencySaveMs: 60_000,
  profileMaxUsers: 200_000,
  // SharedID, ID5, The Trade Desk's Unified ID 1.0, Criteo. Not UID2 nor EUID: their tokens are
  // encrypted anew at each refresh (hourly), so a token names a user for an hour at most.
  eidSources: Object.freeze(['pubcid.org', 'id5-sync.com', 'adserver.org', 'criteo.com']),
}) as Settings;

/** The most users `frequencyMaxUsers` and `profileMaxUsers` may keep: under a Map's 2^24 entries. */
const MAX_USERS = 16_000_000;
/**
 * The longest delay a Node timer keeps (2^31 - 1 ms, about 24.8 days): a longer one fires after 1 ms,
 * so `frequencySaveMs: 2592000000` (30 days, meant as "rarely") rewrote the caps file back to back
 * (a review of 76ffa62). The settings that set a timer's period are held to it.
 */
const TIMER_MAX_MS = 2_147_483_647;

export const SETTINGS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    host: { type: 'string', minLength: 1 },
    port: { type: 'integer', minimum: 0, maximum: 65535 },
    opsPort: { type: 'integer', minimum: 0, maximum: 65535 },
    opsHost: { type: 'string', minLength: 1 },
    maxBodyBytes: { type: 'integer', minimum: 1024 },
    maxDecompressedBytes: { type: 'integer', minimum: 1024 },
    maxJsonDepth: { type: 'integer', minimum: 4, maximum: 1000 },
    maxImps: { type: 'integer', minimum: 1, maximum: 10_000 },
    maxBidsPerResponse: { type: 'integer', minimum: 1, maximum: 10_000 },
    maxReservedUsdPerRequest: { type: 'number', exclusiveMinimum: 0 },
    maxCandidatesPerImp: { type: 'integer', minimum: 1, maximum: 4096 },
    defaultTmaxMs: { type: 'integer', minimum: 1 },
    minTmaxMs: { type: 'integer', minimum: 0 },
    maxTmaxMs: { type: 'integer', minimum: 1 },
    batcher: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxBatchRows: { type: 'integer', minimum: 1, maximum: 65536 },
        maxQueueDelayUs: { type: 'integer', minimum: 0, maximum: 1_000_000 },
      },
    },
    noticeTtlMs: { type: 'integer', minimum: 1000 },
    // 1 minute to 90 days: a token valid longer is a click an advertiser no longer attributes, and
    // each bid's conversion is remembered (deduplicated) until its last token expires.
    conversionWindowMs: { type: 'integer', minimum: 60_000, maximum: 90 * 86_400_000 },
    publicUrl: { type: 'string', pattern: '^https?://' },
    tls: { type: 'object', additionalProperties: false, properties: { keyFile: { type: 'string' }, certFile: { type: 'string' } } },
    noticeSecret: { type: 'string' },
    // As long as a notice secret must be (src/notices/sign.ts); the message names the entry, not its value.
    noticeSecretPrevious: { type: 'array', items: { type: 'string', minLength: 16 } },
    sharedNoticeSignature: { type: 'boolean' },
    tcfVendorId: { type: 'integer', minimum: 0, maximum: 65535 },
    adminToken: { type: 'string' },
    eventLog: {
      type: 'object',
      additionalProperties: false,
      properties: {
        dir: { type: 'string', minLength: 1 },
        rotateBytes: { type: 'integer', minimum: 1024 },
        keepBytes: { type: 'integer', minimum: 0 },
        enabled: { type: 'boolean' },
      },
    },
    ledger: {
      type: 'object',
      additionalProperties: false,
      properties: {
        journalPath: { type: 'string', minLength: 1 },
        redisUrl: { type: 'string' },
        keyPrefix: { type: 'string', minLength: 1 },
        autoPipelining: { type: 'boolean' },
        commandTimeoutMs: { type: 'integer', minimum: 1, maximum: 60_000 },
        syncWindowMs: { type: 'integer', minimum: 0, maximum: 100 },
      },
    },
    modelsDir: { type: 'string', minLength: 1 },
    modelVersion: { type: 'string' },
    backend: { enum: ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] },
    logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
    seed: { type: 'string' },
    pacer: { enum: ['value', 'curve'] },
    shutdownGraceMs: { type: 'integer', minimum: 0, maximum: TIMER_MAX_MS },
    fleetSize: { type: 'integer', minimum: 0 },
    fleetSyncMs: { type: 'integer', minimum: 100, maximum: TIMER_MAX_MS },
    userCacheTtlMs: { type: 'integer', minimum: 0, maximum: 3_600_000 },
    // Each store is a Map, which holds at most 2^24 (16,777,216) entries: past it a store's write
    // throws 'Map maximum size exceeded', and those users are never capped nor evicted.
    frequencyMaxUsers: { type: 'integer', minimum: 1, maximum: MAX_USERS },
    frequencySaveMs: { type: 'integer', minimum: 0, maximum: TIMER_MAX_MS },
    profileMaxUsers: { type: 'integer', minimum: 1, maximum: MAX_USERS },
    eidSources: { type: 'array', uniqueItems: true, items: { type: 'string', pattern: '^[^\\s:]+$' } },
  },
} as const;
