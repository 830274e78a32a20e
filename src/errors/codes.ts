/**
 * Every error the bidder answers with, in one table (as fastify's FST_ERR_* codes): a stable code,
 * the HTTP status, and a short reason. docs/errors.md's error table is kept in step by a test.
 */
export const ERRORS = {
  BODY_TOO_LARGE: { status: 413, reason: 'request body exceeds the size limit' },
  DECOMPRESSED_TOO_LARGE: { status: 413, reason: 'decompressed body exceeds the size limit' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, reason: 'content type must be application/json or text/plain' },
  UNSUPPORTED_ENCODING: { status: 415, reason: 'content encoding must be identity or gzip' },
  BAD_GZIP: { status: 400, reason: 'body is not valid gzip' },
  BAD_UTF8: { status: 400, reason: 'body is not valid UTF-8' },
  BAD_JSON: { status: 400, reason: 'body is not valid JSON' },
  TOO_DEEP: { status: 400, reason: 'JSON nesting exceeds the depth limit' },
  NOT_OBJECT: { status: 400, reason: 'bid request must be a JSON object' },
  MISSING_ID: { status: 400, reason: 'request id must be a non-empty string' },
  MISSING_IMP: { status: 400, reason: 'imp must be a non-empty array' },
  BAD_IMP: { status: 400, reason: 'each imp must be an object with a non-empty string id' },
  DUPLICATE_IMP_ID: { status: 400, reason: 'imp ids must be unique' },
  NO_MEDIA: { status: 400, reason: 'each imp needs a banner, video, native or audio object' },
  BAD_MEDIA: { status: 400, reason: 'imp banner, video, native and audio must be objects' },
  BAD_FLOOR: { status: 400, reason: 'bidfloor must be a finite number >= 0' },
  BAD_CURRENCY: { status: 400, reason: 'currency must be three upper-case letters (ISO 4217 form)' },
  BAD_TMAX: { status: 400, reason: 'tmax must be a positive integer of milliseconds' },
  BAD_AUCTION_TYPE: { status: 400, reason: 'at must be an integer >= 1' },
  BAD_FIELD_TYPE: { status: 400, reason: 'a field the bidder reads has the wrong type' },
  BAD_VERSION: { status: 400, reason: 'x-openrtb-version must be a 2.x version' },
  UNKNOWN_EXCHANGE: { status: 404, reason: 'no such exchange' },
  NOT_FOUND: { status: 404, reason: 'no such route' },
  METHOD_NOT_ALLOWED: { status: 405, reason: 'method not allowed on this route' },
  FORBIDDEN: { status: 403, reason: 'exchange credentials missing or wrong' },
  OPS_LOOPBACK_ONLY: { status: 403, reason: 'metrics and admin answer loopback clients only; set opsPort to serve them on a port of their own' },
  NOTICE_BAD_SIGNATURE: { status: 403, reason: 'notice signature is wrong' },
  NOTICE_EXPIRED: { status: 410, reason: 'notice has expired' },
  NOTICE_BAD_PRICE: { status: 400, reason: 'clearing price above the amount the ledger reserved for the bid' },
  NOTICE_MALFORMED: { status: 400, reason: 'notice parameters missing or malformed' },
  CONVERSION_NOT_WON: { status: 409, reason: 'no win of the clicked bid is known: only an ad that ran converts; not counted, do not retry' },
  ADMIN_DISABLED: { status: 404, reason: 'admin routes are off: no admin token is configured' },
  ADMIN_UNAUTHORIZED: { status: 401, reason: 'admin bearer token missing or wrong' },
  ADMIN_BAD_REQUEST: { status: 400, reason: 'admin request is malformed' },
  ADMIN_FAILED: { status: 409, reason: 'admin action refused; the running state is unchanged' },
  UNKNOWN_CAMPAIGN: { status: 404, reason: 'no such campaign in the serving policies' },
  NOT_READY: { status: 503, reason: 'bidder is not ready' },
  SHUTTING_DOWN: { status: 503, reason: 'bidder is shutting down' },
  LEDGER_UNAVAILABLE: { status: 503, reason: 'ledger unavailable; retry the notice' },
  INTERNAL: { status: 500, reason: 'internal error' },
} as const satisfies Record<string, { status: number; reason: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** A request the bidder refuses; carries its code so the HTTP status is decided in one place. */
export class BidderError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** More fields for the body (e.g. `problems`), after `error` and `reason`. */
  readonly extra: Readonly<Record<string, unknown>> | undefined;
  /** `detail` follows the table's reason; `reason` replaces it (a probe's own words). */
  constructor(code: ErrorCode, detail?: string, o: { reason?: string; extra?: Record<string, unknown> } = {}) {
    // Built without a stack: a refusal is answered by its code and reason, and nothing reads where
    // it was thrown, while capturing the frames cost about 6 µs, more than the rest of answering a
    // malformed request or a duplicate notice. Bugs are other errors and keep their stacks.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(o.reason ?? (detail ? `${ERRORS[code].reason}: ${detail}` : ERRORS[code].reason));
    Error.stackTraceLimit = limit;
    this.code = code;
    this.status = ERRORS[code].status;
    this.extra = o.extra;
  }
}

/** The JSON body of an error answer: `{"error": CODE, "reason": "...", ...extra}`. */
export function errorBody(err: BidderError): string {
  return JSON.stringify(err.extra ? { error: err.code, reason: err.message, ...err.extra } : { error: err.code, reason: err.message });
}

/**
 * OpenRTB 2.6 no-bid reason codes (List 5.24 "No-Bid Reason Codes") plus the bidder's own
 * 500+ range (exchange-specific codes are allowed from 500). Kept here with the errors so
 * docs/errors.md documents them from one place (test/errors-doc.test.ts).
 */
export const NBR = {
  UNKNOWN: 0,
  TECHNICAL_ERROR: 1,
  INVALID_REQUEST: 2,
  KNOWN_WEB_CRAWLER: 3,
  SUSPECTED_NON_HUMAN: 4,
  CLOUD_DATA_CENTER_PROXY: 5,
  UNSUPPORTED_DEVICE: 6,
  BLOCKED_PUBLISHER: 7,
  UNMATCHED_USER: 8,
  DAILY_READER_CAP: 9,
  DAILY_DOMAIN_CAP: 10,
  // Bidder-specific reasons (>= 500).
  NO_ELIGIBLE_CAMPAIGN: 500,
  BELOW_FLOOR: 501,
  BUDGET_EXHAUSTED: 502,
  PACING: 503,
  DEADLINE: 504,
  CURRENCY: 510,
  LEDGER_UNAVAILABLE: 511,
  OVERLOADED: 505,
  PRIVACY: 506,
  MODEL_NOT_READY: 507,
  BLOCKED: 508,
  TMAX_TOO_SHORT: 509,
  INSECURE: 512,
  SEAT: 513,
  EXPIRY: 514,
  QUANTITY: 515,
  DSA: 516,
  ABORTED: 517,
} as const;

export type NoBidReason = keyof typeof NBR;
