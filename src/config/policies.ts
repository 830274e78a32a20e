import { readFileSync, existsSync } from 'node:fs';
import { isDaypartZone } from '../util/zone.js';
import { isCountryCode } from '../util/country.js';
import { MAX_CATEGORY_LENGTH } from './limits.js';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { deserialize, serialize } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parseDocument } from 'yaml';
import type { Campaign, MediaFile, MediaType, NativeAssets, NonLinearAd } from '../types.js';
import { canonicalMime } from '../eligibility/mime.js';
import { DEFAULT_SETTINGS, SETTINGS_SCHEMA, adminTokenProblem, noticeSecretProblem, type Settings } from './settings.js';
import { NATIVE_DATA_TYPES } from '../types.js';
import { FREQ_MAX_COUNT, FREQ_MAX_WINDOW_SEC } from '../freqcap/freqcap.js';
import { ipRangeProblem } from '../util/ip.js';

/** The seat the bidder answers in when the exchange names none (`seat` in exchanges.yaml). */
export const DEFAULT_SEAT = 'rtb-bidder';

/** Every ad format the bidder answers: an exchange's `formats` unless it names fewer. */
export const ALL_FORMATS: readonly MediaType[] = Object.freeze(['banner', 'video', 'native', 'audio']);

/** Per-exchange behaviour (policies/exchanges.yaml). */
export interface ExchangeSettings {
  name: string;
  /** Currency the bidder answers in for this exchange. */
  currency: string;
  /** Accept gzip-compressed request bodies. */
  gzip: boolean;
  /** 'empty' = HTTP 204; 'nbr' = 200 with `{"id":..,"nbr":N}` (OpenRTB 2.6 §4.2.2). */
  noBid: 'empty' | 'nbr';
  /** Time the exchange's network eats from tmax; the bidder's own deadline is tmax minus this. */
  networkAllowanceMs: number;
  /** Decimal places of prices answered in `currency`; an answer in another currency: `answerDecimals` (src/price/price.ts). */
  priceDecimals: number;
  /**
   * The auction a request without `at` is priced for: 2 (second price, OpenRTB's default) or 1
   * (first price). Prebid.js never sends `at`, and its auction is first price: priced as second
   * price, a bid there was paid at the paced value, unshaded (10x in the audit).
   */
  auctionType: 1 | 2;
  /** Optional access control: allowed client addresses (IP literals or CIDR ranges) and/or a shared secret header value. */
  allowIps: string[];
  sharedSecret: string;
  /**
   * An exchange with neither `sharedSecret` nor `allowIps` answers only loopback clients (a bid
   * request reserves budget, so an open port lets anyone tie it up); `openToAll` lifts that.
   */
  openToAll: boolean;
  /**
   * How long a bid's reservation holds budget when the exchange sends no notice; 0 = the notice
   * TTL. Shorter frees the budget of an exchange that never answers sooner; a win arriving after it
   * is still recorded (as spend while the budget has room, else as overspend).
   */
  reservationHoldMs: number;
  /** The seat the bidder answers in (`seatbid.seat`), checked against `bseat`, `wseat` and deals' `wseat`. */
  seat: string;
  /**
   * Browser origins allowed to call the bid route (CORS with credentials, on every answer): for
   * pages running Prebid.js client adapters. `*` allows any origin. Empty: no CORS headers.
   */
  corsOrigins: string[];
  /**
   * Write the bid's own price into nurl/burl instead of `${AUCTION_PRICE}`, for clients that never
   * expand the macro (Prebid.js fires burl and eventtrackers as they are): the price settled is
   * then the bid price, which a first-price client is billed.
   */
  expandPrice: boolean;
  /**
   * Which notice is the billable event: `win` (default) settles spend on the win notice, for
   * exchanges that bill what they report won; `billing` settles only on the billing notice (`burl`,
   * OpenRTB 2.5/2.6: the win notice is "not necessarily indicative of a delivered or billable ad"),
   * so a win never rendered costs nothing and its reservation is released at expiry. Only for
   * exchanges that send `burl` (or whose bids' markup carries the impression tracker): on one that
   * never does, nothing would be recorded.
   */
  billsOn: 'win' | 'billing';
  /**
   * Give video and audio bids a `nurl` (default false). Prebid.js reads a video bid's nurl as the
   * URL of its VAST, so it gets none there; an exchange that reports wins only by nurl and sends no
   * `burl` needs one, or the VAST impression settles the bid at its price, above a second-price
   * clearing price.
   */
  vastNurl: boolean;
  /**
   * Put the impression tracker (`/notice/impression`, a 1×1 image) in banner markup too (default
   * false; native and VAST markup always carry theirs): for clients that render a banner without
   * firing `nurl` or `burl`, such as Prebid Mobile's own rendering behind Prebid Server. Without it
   * such an impression is billed and never recorded. It costs a banner bid one more MAC and its
   * impression one more request to the bidder, which clients that fire their notices do not need.
   */
  bannerImpressionTracker: boolean;
  /**
   * Whether the exchange sends loss notices (`lurl`). true: a bid that hears nothing teaches
   * nothing. false: a bid of this process whose notices have all stayed silent when its notice TTL
   * passes is taken as lost at its bid, by the shader and the pacer (src/notices/loss-inference.ts).
   * 'auto' (default): as true until the exchange has shown it sends none (1,000 first-price bids
   * expired unheard, no loss notice from it), then as false until a loss notice comes. Without
   * losses the first-price shader learns from wins alone, each saying the competition was at most
   * the bid, and shades bids down until they stop winning. Inferring holds only where each bid's
   * notices come back to the process that made it (docs/configuration.md): one heard by another
   * counts here as a loss.
   */
  lossNotices: boolean | 'auto';
  /**
   * The ad formats the exchange's clients can render (default: all four). An imp's media objects
   * of other formats are not offered to campaigns: Prebid.js reads a bid's `mtype` 1, 2 and 4 only
   * and takes any other for a banner, so an audio bid (mtype 3) on a banner+audio unit was written
   * into the page as a banner, its VAST as markup, and billed for an ad that never played.
   */
  formats: readonly MediaType[];
}

export interface Policies {
  campaigns: Campaign[];
  exchanges: Map<string, ExchangeSettings>;
  /** Units of currency per 1 USD. USD is always 1. */
  ratesPerUsd: Map<string, number>;
  /**
   * currency.yaml's `confirmChanges`: rates a reload may move to by more than MAX_RATE_MOVE
   * (`rateMoves`). Absent: none.
   */
  confirmedRates?: Map<string, number>;
  settings: Settings;
}

/** Every problem found in a policy set, reported together. */
export class PolicyError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid policies (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  - ${problems.join('\n  - ')}`);
    this.problems = problems;
  }
}

const IMAGE_DIM = 8;
/** The largest |value| an imageEmbedding may hold: twice the range the shipped models were trained on. */
const IMAGE_BOUND = 2;

const httpUrl = { type: 'string', pattern: '^https?://' } as const;
// Type and subtype in any case, parameters allowed (RFC 2045): compared canonical (src/eligibility/mime.ts).
const mimeType = { type: 'string', pattern: '^[A-Za-z]+/[A-Za-z0-9.+-]+[ \\t]*(;[ -~]*)?$' } as const;

/** Native assets besides the title (Native 1.2 §4.4 images by type, §4.6 data by type name). */
const NATIVE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    images: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['type', 'url', 'w', 'h'],
        properties: { type: { enum: ['icon', 'logo', 'main'] }, url: httpUrl, w: { type: 'integer', minimum: 1 }, h: { type: 'integer', minimum: 1 }, mime: mimeType },
      },
    },
    data: {
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(NATIVE_DATA_TYPES.map((n) => [n, { type: 'string', minLength: 1 }])),
    },
  },
} as const;

const MEDIA_FILE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['url', 'mime'],
  properties: {
    url: httpUrl,
    mime: mimeType,
    w: { type: 'integer', minimum: 0 },
    h: { type: 'integer', minimum: 0 },
    bitrateKbps: { type: 'number', exclusiveMinimum: 0 },
    delivery: { enum: ['progressive', 'streaming'] },
  },
} as const;

const NON_LINEAR_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['url', 'mime', 'w', 'h'],
  properties: { url: httpUrl, mime: mimeType, w: { type: 'integer', minimum: 1 }, h: { type: 'integer', minimum: 1 } },
} as const;

/** A BCP 47 language tag as creatives declare it: a primary subtag of 2 or 3 letters, then subtags. */
const LANGUAGE = { type: 'string', pattern: '^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$' } as const;

const CREATIVE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'format', 'title', 'landingUrl'],
  properties: {
    // URL-safe: the id travels in notice URLs, which Prebid.js percent-decodes (a %26 would become a query separator).
    id: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.-]+$' },
    format: { enum: ['banner', 'video', 'native', 'audio'] },
    language: LANGUAGE,
    w: { type: 'integer', minimum: 1 },
    h: { type: 'integer', minimum: 1 },
    durationSec: { type: 'number', exclusiveMinimum: 0 },
    mimes: { type: 'array', items: { type: 'string' } },
    attr: { type: 'array', items: { type: 'integer' } },
    title: { type: 'string' },
    keywords: { type: 'array', items: { type: 'string' } },
    imageEmbedding: { type: 'array', items: { type: 'number' }, minItems: IMAGE_DIM, maxItems: IMAGE_DIM },
    landingUrl: { type: 'string', pattern: '^https?://' },
    adm: { type: 'string' },
    btype: { type: 'integer', minimum: 1, maximum: 4 },
    mime: mimeType,
    native: NATIVE_SCHEMA,
    mediaFiles: { type: 'array', minItems: 1, items: MEDIA_FILE_SCHEMA },
    nonLinear: NON_LINEAR_SCHEMA,
    interstitial: { type: 'boolean' },
    rewarded: { type: 'boolean' },
    plcmt: { type: 'array', minItems: 1, items: { type: 'integer', minimum: 1, maximum: 4 } },
  },
} as const;

const strings = { type: 'array', items: { type: 'string', minLength: 1 } } as const;

const CAMPAIGN_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'advertiser', 'adomain', 'goal', 'budget', 'maxBidCpmUsd', 'creatives'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.-]+$' },
    advertiser: { type: 'string', minLength: 1 },
    adomain: { ...strings, minItems: 1 },
    cat: strings,
    /** The default language of the campaign's creatives. */
    language: LANGUAGE,
    dsa: {
      type: 'object',
      additionalProperties: false,
      required: ['behalf', 'paid'],
      properties: { behalf: { type: 'string', minLength: 1, maxLength: 100 }, paid: { type: 'string', minLength: 1, maxLength: 100 } },
    },
    // https only: the link is in the ad's markup, which a secure imp allows nothing over http in.
    privacyUrl: { type: 'string', pattern: '^https://[^\\s/?#]+[^\\s]*$' },
    catByTaxonomy: { type: 'object', propertyNames: { pattern: '^[1-9][0-9]*$' }, additionalProperties: { ...strings, minItems: 1 } },
    goal: {
      type: 'object',
      additionalProperties: false,
      required: ['type', 'valueUsd'],
      properties: { type: { enum: ['cpc', 'cpa', 'cpm'] }, valueUsd: { type: 'number', exclusiveMinimum: 0 }, cvr: { type: 'number', exclusiveMinimum: 0, maximum: 1 } },
    },
    budget: {
      type: 'object',
      additionalProperties: false,
      required: ['dailyUsd'],
      properties: {
        dailyUsd: { type: 'number', exclusiveMinimum: 0 },
        lifetimeUsd: { type: 'number', exclusiveMinimum: 0 },
        start: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
        end: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
        pacing: { enum: ['max-value', 'even', 'asap'] },
        hourlyCapShare: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
      },
    },
    maxBidCpmUsd: { type: 'number', exclusiveMinimum: 0 },
    onNoConsent: { enum: ['contextual', 'nobid'] },
    frequencyCap: {
      type: 'object',
      additionalProperties: false,
      required: ['count', 'windowSec'],
      // The frequency stores keep FREQ_MAX_COUNT impressions over FREQ_MAX_WINDOW_SEC: a larger cap would never trigger.
      properties: {
        count: { type: 'integer', minimum: 1, maximum: FREQ_MAX_COUNT },
        windowSec: { type: 'integer', minimum: 1, maximum: FREQ_MAX_WINDOW_SEC },
      },
    },
    paused: { type: 'boolean' },
    targeting: {
      type: 'object',
      additionalProperties: false,
      properties: {
        siteIds: strings,
        appBundles: strings,
        domains: strings,
        // A page category longer is not read from requests (eligibility.ts): one here would never match.
        categories: { type: 'array', items: { type: 'string', minLength: 1, maxLength: MAX_CATEGORY_LENGTH } },
        countries: strings,
        regions: strings,
        deviceTypes: { type: 'array', items: { type: 'integer', minimum: 1, maximum: 8 } },
        os: strings,
        hours: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 23 } },
        timeZone: { type: 'string', minLength: 1 },
        segments: strings,
        deals: {
          type: 'array',
          items: { type: 'object', additionalProperties: false, required: ['id'], properties: { id: { type: 'string', minLength: 1 } } },
        },
        dealsOnly: { type: 'boolean' },
      },
    },
    creatives: { type: 'array', minItems: 1, items: CREATIVE_SCHEMA },
  },
} as const;

const CAMPAIGNS_FILE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['campaigns'],
  properties: { campaigns: { type: 'array', items: CAMPAIGN_SCHEMA } },
} as const;

const EXCHANGE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    currency: { type: 'string', pattern: '^[A-Z]{3}$' },
    gzip: { type: 'boolean' },
    noBid: { enum: ['empty', 'nbr'] },
    networkAllowanceMs: { type: 'integer', minimum: 0 },
    priceDecimals: { type: 'integer', minimum: 0, maximum: 6 },
    auctionType: { enum: [1, 2] },
    allowIps: strings,
    sharedSecret: { type: 'string' },
    openToAll: { type: 'boolean' },
    reservationHoldMs: { type: 'integer', minimum: 0 },
    seat: { type: 'string', minLength: 1 },
    corsOrigins: { type: 'array', items: { type: 'string', pattern: '^(\\*|https?://[^/]+)$' } },
    expandPrice: { type: 'boolean' },
    vastNurl: { type: 'boolean' },
    bannerImpressionTracker: { type: 'boolean' },
    billsOn: { enum: ['win', 'billing'] },
    lossNotices: { enum: [true, false, 'auto'] },
    formats: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: ALL_FORMATS } },
  },
} as const;

const EXCHANGES_FILE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['exchanges'],
  properties: {
    exchanges: {
      type: 'object',
      required: ['default'],
      // Names and ids travel in every notice URL, whose query the handler reads up to 8,192 characters.
      propertyNames: { pattern: '^[a-z0-9][a-z0-9_-]*$', maxLength: 64 },
      additionalProperties: EXCHANGE_SCHEMA,
    },
  },
} as const;

const CURRENCY_FILE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['ratesPerUsd'],
  properties: {
    ratesPerUsd: {
      type: 'object',
      propertyNames: { pattern: '^[A-Z]{3}$' },
      additionalProperties: { type: 'number', exclusiveMinimum: 0 },
    },
    confirmChanges: {
      type: 'object',
      propertyNames: { pattern: '^[A-Z]{3}$' },
      additionalProperties: { type: 'number', exclusiveMinimum: 0 },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
const validators = {
  campaigns: ajv.compile(CAMPAIGNS_FILE_SCHEMA),
  exchanges: ajv.compile(EXCHANGES_FILE_SCHEMA),
  currency: ajv.compile(CURRENCY_FILE_SCHEMA),
  settings: ajv.compile(SETTINGS_SCHEMA),
};

function describe(file: string, errors: ErrorObject[] | null | undefined): string[] {
  // A bad key is reported by its own error, which names it, and again by a `propertyNames` one that does not.
  return (errors ?? []).filter((e) => e.keyword !== 'propertyNames').map((e) => {
    const where = (e.instancePath || '/') + (e.propertyName !== undefined ? ` key '${e.propertyName}'` : '');
    const extra =
      e.keyword === 'additionalProperties'
        ? ` (${(e.params as { additionalProperty: string }).additionalProperty})`
        : e.keyword === 'enum'
          ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')})`
          : '';
    return `${file}: ${where} ${e.message}${extra}`;
  });
}

/** A key as a segment of a JSON pointer (RFC 6901), as ajv writes `instancePath`. */
const pointer = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1');

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

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
function validate(file: string, check: ValidateFunction, doc: unknown, problems: string[]): (path: string) => boolean {
  if (doc === undefined || check(doc)) return () => true;
  problems.push(...describe(file, check.errors));
  return passed(check.errors);
}

function readDoc(dir: string, name: string, problems: string[], required: boolean): unknown {
  for (const ext of ['.yaml', '.yml', '.json']) {
    const path = join(dir, name + ext);
    if (!existsSync(path)) continue;
    // Every syntax error the parser recovers past, each with its line: the first alone hid the others.
    const why = (message: string) => `${name}${ext}: cannot parse: ${message.split('\n')[0].replace(/:$/, '')}`;
    try {
      const doc = parseDocument(readFileSync(path, 'utf8'));
      // As yaml's parse did (an unresolved tag, say): a warning of the process, not a problem.
      for (const w of doc.warnings) process.emitWarning(w);
      if (doc.errors.length === 0) return doc.toJS();
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

function deepMerge<T>(base: T, over: Record<string, unknown>): T {
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

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

/**
 * Load and validate a policy directory: campaigns.yaml, exchanges.yaml, currency.yaml and the
 * optional bidder.yaml (settings), overlaid with `overrides` (environment and flags). Throws one
 * PolicyError listing every problem in every file. `running`: the settings of a serving bidder
 * (a reload): settings are read at start only, so the campaigns are checked against those that
 * run, not bidder.yaml's, whose changes wait for a restart (a cap the running curve pacer ignores
 * passed when bidder.yaml said value, and campaigns the running value pacer holds were refused
 * when it said curve).
 */
/**
 * The rates a policy set is checked against (`rateMoves`): the running ones for a reload, the last
 * run's at a start; `what` names the bound in the problem.
 */
export interface LastRates {
  rates: ReadonlyMap<string, number>;
  what: string;
}

export function loadPolicies(dir: string, overrides: Partial<Settings> = {}, running?: Settings, lastRates?: LastRates): Policies {
  const problems: string[] = [];
  if (!existsSync(dir)) throw new PolicyError([`policy directory ${dir} does not exist`]);

  const camDoc = readDoc(dir, 'campaigns', problems, true);
  const exDoc = readDoc(dir, 'exchanges', problems, true);
  const curDoc = readDoc(dir, 'currency', problems, true);
  const setDoc = readDoc(dir, 'bidder', problems, false) ?? {};

  // Every value that passes its schema also gets its cross checks, whatever else of its file
  // fails, so one run lists every problem that can be found, not only those of the first failing
  // pass (a type error in one campaign hid a duplicate id among the others). A value that failed is
  // reported already and left out of them; the set is refused either way.
  const camPassed = validate('campaigns.yaml', validators.campaigns, camDoc, problems);
  const exPassed = validate('exchanges.yaml', validators.exchanges, exDoc, problems);
  const curPassed = validate('currency.yaml', validators.currency, curDoc, problems);
  const { settings: merged } = settingsOf(setDoc, overrides, problems);
  const serving = running ?? merged;

  const rateDefs = isRecord(curDoc) && isRecord(curDoc.ratesPerUsd) ? curDoc.ratesPerUsd : undefined;
  const ratesPerUsd = new Map<string, number>(Object.entries(rateDefs ?? {}).filter(([cur]) => curPassed(`/ratesPerUsd/${pointer(cur)}`)) as Array<[string, number]>);
  ratesPerUsd.set('USD', 1);
  const confirmDefs = isRecord(curDoc) && isRecord(curDoc.confirmChanges) ? curDoc.confirmChanges : {};
  const confirmedRates = new Map<string, number>(Object.entries(confirmDefs).filter(([cur]) => curPassed(`/confirmChanges/${pointer(cur)}`)) as Array<[string, number]>);

  const exchanges = new Map<string, ExchangeSettings>();
  const exDefs = (isRecord(exDoc) && isRecord(exDoc.exchanges) ? exDoc.exchanges : {}) as Record<string, Partial<ExchangeSettings>>;
  // An exchange's value is its own or, unset, the default exchange's: it passed where that one did.
  const exOk = (name: string, key: string): boolean => exPassed(`/exchanges/${pointer(isRecord(exDefs[name]) && key in exDefs[name] ? name : 'default')}/${key}`);
  const base: ExchangeSettings = {
    name: 'default',
    currency: 'USD',
    gzip: true,
    noBid: 'empty',
    networkAllowanceMs: 20,
    priceDecimals: 4,
    auctionType: 2,
    allowIps: [],
    sharedSecret: '',
    openToAll: false,
    reservationHoldMs: 0,
    seat: DEFAULT_SEAT,
    corsOrigins: [],
    expandPrice: false,
    vastNurl: false,
    bannerImpressionTracker: false,
    billsOn: 'win',
    lossNotices: 'auto',
    formats: ALL_FORMATS,
    ...(isRecord(exDefs.default) ? exDefs.default : {}),
  };
  for (const [name, def] of Object.entries(exDefs)) {
    if (!isRecord(def)) continue;
    const ex: ExchangeSettings = { ...base, ...def, name };
    // A currency whose rate failed its schema is reported there, not here.
    if (rateDefs !== undefined && exOk(name, 'currency') && ex.currency !== 'USD' && !Object.hasOwn(rateDefs, ex.currency)) problems.push(`exchanges.yaml: /exchanges/${name}/currency ${ex.currency} has no rate in currency.yaml`);
    if (exOk(name, 'allowIps')) {
      ex.allowIps.forEach((ip, i) => {
        const why = ipRangeProblem(ip);
        if (why) problems.push(`exchanges.yaml: /exchanges/${name}/allowIps/${i} '${ip}' ${why}`);
      });
    }
    exchanges.set(name, ex);
  }

  const campaigns: Campaign[] = [];
  const campaignIds = new Set<string>();
  const creativeIds = new Set<string>();
  const raw: unknown[] = isRecord(camDoc) && Array.isArray(camDoc.campaigns) ? camDoc.campaigns : [];
  raw.forEach((c, i) => {
    if (!isRecord(c)) return;
    const ok = (field: string) => camPassed(`/campaigns/${i}/${field}`);
    const where = `campaigns.yaml: /campaigns/${i} (${String(c.id)})`;
    if (ok('id')) {
      if (campaignIds.has(c.id as string)) problems.push(`${where}: duplicate campaign id`);
      campaignIds.add(c.id as string);
    }
    // Each check reads only values that passed their schema (a value that failed is checked as
    // absent), whatever else of the same object failed: a misspelt budget key hid its bad dates.
    const budget = (isRecord(c.budget) ? c.budget : {}) as Partial<Campaign['budget']>;
    const bOk = (...keys: string[]) => keys.every((k) => ok(`budget/${k}`));
    // The schema checks the form (yyyy-mm-dd); a day that is not in the calendar (02-30) is caught here.
    for (const k of ['start', 'end'] as const) {
      const d = budget[k];
      if (d === undefined || !bOk(k)) continue;
      const t = Date.parse(`${d}T00:00:00Z`);
      if (Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== d) problems.push(`${where}: budget.${k} ${d} is not a day of the calendar`);
    }
    if (bOk('start', 'end') && budget.start && budget.end && budget.start > budget.end) problems.push(`${where}: budget.start is after budget.end`);
    if (bOk('lifetimeUsd', 'dailyUsd') && budget.lifetimeUsd !== undefined && budget.lifetimeUsd < budget.dailyUsd!) {
      problems.push(`${where}: budget.lifetimeUsd is below budget.dailyUsd`);
    }
    // Only the value pacer's max-value and asap modes hold an hourly cap; the curve pacer (pacing:
    // even, or every campaign under pacer: curve) took it and bid on past it.
    const capped = bOk('hourlyCapShare') && budget.hourlyCapShare !== undefined;
    if (capped && bOk('pacing') && budget.pacing === 'even') problems.push(`${where}: budget.hourlyCapShare is not held with pacing: even (it follows the day's traffic); pace max-value or asap, or remove the cap`);
    else if (capped && serving.pacer === 'curve') problems.push(`${where}: budget.hourlyCapShare is not held by pacer: curve (${running ? 'running: a change of bidder.yaml\'s pacer waits for a restart' : 'bidder.yaml'}); run pacer: value, or remove the cap`);
    const targeting = (isRecord(c.targeting) ? c.targeting : {}) as Partial<Campaign['targeting']>;
    // Each country on its own: one that is not a string is the schema's, the others still checked.
    const countries = Array.isArray(targeting.countries) ? targeting.countries.filter((_, k) => ok(`targeting/countries/${k}`)) : [];
    const unknown = countries.filter((x) => !isCountryCode(x));
    if (unknown.length) problems.push(`${where}: targeting.countries ${unknown.join(', ')} are not ISO 3166-1 country codes (alpha-3 as OpenRTB's geo.country, or alpha-2)`);
    const zone = targeting.timeZone;
    if (zone !== undefined && ok('targeting/timeZone') && !isDaypartZone(zone)) problems.push(`${where}: targeting.timeZone '${zone}' is not UTC, user, or an IANA time zone (America/New_York)`);
    // A cpc or cpm goal is priced on no conversion rate: a cvr there would be read by nothing.
    if (isRecord(c.goal) && ok('goal/cvr') && ok('goal/type') && c.goal.cvr !== undefined && c.goal.type !== 'cpa') problems.push(`${where}: goal.cvr is for cpa goals (a ${String(c.goal.type)} goal is priced on no conversion rate)`);
    if (isRecord(c.catByTaxonomy) && c.catByTaxonomy['1'] !== undefined && ok('catByTaxonomy/1')) problems.push(`${where}: catByTaxonomy 1 is IAB Content Category Taxonomy 1.0, which \`cat\` holds`);
    // A path with an empty place between codes ('552//573') or no code at all ('/') names no code
    // there: the catalog would drop it without a word, and a taxonomy left with no code refuses the
    // campaign every request in it. A slash at either end ('552/589/', '/483') leaves none out.
    if (isRecord(c.catByTaxonomy)) {
      for (const [t, entries] of Object.entries(c.catByTaxonomy)) {
        if (!Array.isArray(entries)) continue;
        const empty = (entries as unknown[]).filter((e, k): e is string => ok(`catByTaxonomy/${t}/${k}`) && typeof e === 'string' && leavesCodeOut(e));
        if (empty.length) problems.push(`${where}: catByTaxonomy ${t} entries ${empty.map((e) => `'${e}'`).join(', ')} leave a code out: write each code after its ancestors, root first, '/' between (552/579/589)`);
      }
    }
    const creatives = (Array.isArray(c.creatives) ? (c.creatives as unknown[]) : []).map((cr, j) => {
      if (!isRecord(cr)) return cr;
      const cw = `${where} /creatives/${j} (${String(cr.id)})`;
      if (ok(`creatives/${j}/id`)) {
        if (creativeIds.has(cr.id as string)) problems.push(`${cw}: duplicate creative id`);
        creativeIds.add(cr.id as string);
      }
      // As the campaign's: each check reads only values that passed their schema, and runs whatever
      // else of the creative failed (a misspelt landingUrl hid a mime with no media file).
      const crOk = (path: string) => ok(`creatives/${j}/${path}`);
      // Where a check reads only whether a key is there (w, h, durationSec, adm), a value that failed its schema is.
      const format = crOk('format') ? cr.format : undefined;
      if (format === 'banner' && (cr.w === undefined || cr.h === undefined)) problems.push(`${cw}: banner creatives need w and h`);
      // The shipped models learnt the image weights on values in [-1, 1] (catalog/generate.ts); far
      // past them the logit runs away: ×100 scored a pCTR of exactly 1, bid at the campaign's cap.
      const embedding = Array.isArray(cr.imageEmbedding) && crOk('imageEmbedding') ? (cr.imageEmbedding as number[]) : [];
      const far = embedding.findIndex((v) => !(Math.abs(v) <= IMAGE_BOUND));
      if (far >= 0) problems.push(`${cw}: imageEmbedding/${far} is ${embedding[far]}, outside [-${IMAGE_BOUND}, ${IMAGE_BOUND}]: the models were trained on values in [-1, 1]`);
      for (const [field, text, path] of creativeTexts(cr)) {
        const at = crOk(path) ? text.search(XML_CONTROL) : -1;
        if (at >= 0) problems.push(`${cw}: ${field} holds the control character U+${text.charCodeAt(at).toString(16).toUpperCase().padStart(4, '0')} at character ${at + 1}, which no VAST (XML) document can carry; only tab, LF and CR may be there`);
      }
      const files = cr.mediaFiles as Array<{ mime: string }> | undefined;
      if (format === 'video' || format === 'audio') {
        // A VAST answer without a file to play, or an overlay, is an ad no player can run.
        if (cr.durationSec === undefined || (!files && !(format === 'video' && cr.nonLinear))) {
          problems.push(`${cw}: ${format} creatives need durationSec and mediaFiles${format === 'video' ? ' (or nonLinear)' : ''}`);
        }
        // Only against files that all passed: one left out would leave its type with no file.
        if (Array.isArray(cr.mimes) && crOk('mediaFiles') && Array.isArray(files)) {
          const missing = (cr.mimes as string[]).filter((m, k) => crOk(`mimes/${k}`) && !files.some((f) => canonicalMime(f.mime) === canonicalMime(m)));
          if (missing.length) problems.push(`${cw}: mimes ${missing.join(', ')} have no media file`);
        }
      } else if (format !== undefined) {
        for (const k of ['mediaFiles', 'nonLinear', 'mimes', 'durationSec', 'plcmt']) if (cr[k] !== undefined && crOk(k)) problems.push(`${cw}: ${k} is for video and audio creatives`);
      }
      if (format !== undefined && format !== 'native' && cr.native !== undefined && crOk('native')) problems.push(`${cw}: native assets are for native creatives`);
      // Generated markup carries the notices and answers the request's assets or VAST version; an
      // operator's own markup could do neither for native, video or audio.
      if (format !== undefined && format !== 'banner' && cr.adm !== undefined && crOk('adm')) problems.push(`${cw}: adm (own markup) is for banner creatives`);
      if (cr.btype !== undefined && crOk('btype') && cr.adm === undefined) problems.push(`${cw}: btype says what kind of banner an adm is; without adm the bidder's own markup is a text link (1)`);
      if (cr.mime !== undefined && crOk('mime') && cr.adm === undefined) problems.push(`${cw}: mime says what type of content an adm is; without adm the bidder's own markup is HTML (text/html)`);
      // Its schema problems refuse the set: a creative that has any is never built to be served.
      if (!ok(`creatives/${j}`)) return cr;
      return {
        attr: [],
        keywords: [],
        imageEmbedding: new Array(IMAGE_DIM).fill(0),
        // The MIME types a video/audio creative answers are those of its media files.
        ...(files && !cr.mimes ? { mimes: [...new Set(files.map((f) => canonicalMime(f.mime)))] } : {}),
        // A creative says its language, or has its campaign's.
        ...(c.language !== undefined ? { language: c.language } : {}),
        // The page is about the buyer's targeting, one per campaign; the markup only sees the creative.
        ...(c.privacyUrl !== undefined && cr.format === 'native' ? { privacyUrl: c.privacyUrl } : {}),
        ...cr,
        ...canonicalCreativeMimes(cr),
        campaignId: c.id,
      };
    });
    campaigns.push({
      cat: [],
      targeting: {},
      onNoConsent: 'contextual',
      ...c,
      creatives,
    } as unknown as Campaign);
  });
  // With the rest, so that one try lists every problem; only rates that passed their schema.
  if (lastRates) problems.push(...rateMoves(lastRates.rates, { ratesPerUsd, confirmedRates }, lastRates.what).problems);
  if (problems.length) throw new PolicyError(problems);

  return deepFreeze({ campaigns, exchanges, ratesPerUsd, confirmedRates, settings: merged });
}

/**
 * The most a reload may move a currency's rate, as a ratio either way (1.25: 0.92 → 1.15 or
 * 0.736). A daily update moves a rate by a few percent; a typo off by a power of ten moves it by
 * 10 × or more, and since a bid is priced at USD × rate but reserved and settled at its price ÷ the
 * rate signed in its URLs, a rate 100 × too high bids 100 × more in the exchange's currency while
 * the ledger records what is billed ÷ 100 (maxBidCpmUsd, in USD, does not stop it).
 */
export const MAX_RATE_MOVE = 1.25;

/** A rate a reload moves: units of `currency` per USD, `from` the running one, `to` the new. */
export interface RateChange {
  currency: string;
  from: number;
  to: number;
}

/**
 * The rates `next` moves from those `running`, and one problem naming every move past
 * MAX_RATE_MOVE that `next.confirmedRates` does not confirm at exactly its new rate (a confirmation
 * left in the file is inert at any other rate, so a later typo is caught again). A currency added
 * or removed is not a move; `running` holds the rates to check against (src/live/live.ts keeps
 * every currency's last rate, removed ones too, so a removal and a re-adding are one move, and
 * keeps them across restarts in `ratesFile`). `what`: the bound's name in the problem.
 */
export function rateMoves(running: ReadonlyMap<string, number>, next: Pick<Policies, 'ratesPerUsd' | 'confirmedRates'>, what = 'a reload may move a rate'): { changes: RateChange[]; problems: string[] } {
  const changes: RateChange[] = [];
  const unconfirmed: RateChange[] = [];
  for (const [currency, to] of next.ratesPerUsd) {
    const from = running.get(currency);
    if (from === undefined || from === to) continue;
    changes.push({ currency, from, to });
    // Within the bound, its ends included: 0.736 / 0.92 is 0.7999999999999999 in floating point.
    const ratio = to / from;
    if (ratio <= MAX_RATE_MOVE * (1 + 1e-9) && ratio >= (1 - 1e-9) / MAX_RATE_MOVE) continue;
    if (next.confirmedRates?.get(currency) !== to) unconfirmed.push({ currency, from, to });
  }
  if (unconfirmed.length === 0) return { changes, problems: [] };
  const moves = unconfirmed.map(({ currency, from, to }) => `${currency} ${from} → ${to} (× ${Number((to / from).toPrecision(3))})`).join(', ');
  const confirm = unconfirmed.map(({ currency, to }) => `${currency}: ${to}`).join(', ');
  const share = Math.round((MAX_RATE_MOVE - 1) * 100);
  return {
    changes,
    problems: [`currency.yaml: ${moves}: more than the ${share} % ${what}; confirm ${unconfirmed.length === 1 ? 'it' : 'them'} with \`confirmChanges: { ${confirm} }\` in currency.yaml, or correct the rate${unconfirmed.length === 1 ? '' : 's'}`],
  };
}

/**
 * bidder.yaml's document over the defaults, then `overrides`; its problems go on `problems`, and
 * `passed` says which of its values (JSON pointers: `/ledger/journalPath`) passed their schema.
 */
function settingsOf(setDoc: unknown, overrides: Partial<Settings>, problems: string[]): { settings: Settings; passed: (path: string) => boolean } {
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
 * other settings are wrong; none did where bidder.yaml cannot be parsed. Throws a PolicyError where
 * the directory does not exist.
 */
export function readSettings(dir: string, overrides: Partial<Settings> = {}): { settings: Settings; problems: string[]; passed: (path: string) => boolean } {
  const problems: string[] = [];
  if (!existsSync(dir)) throw new PolicyError([`policy directory ${dir} does not exist`]);
  const doc = readDoc(dir, 'bidder', problems, false);
  const unread = problems.length > 0;
  const { settings, passed } = settingsOf(doc ?? {}, overrides, problems);
  return { settings: deepFreeze(settings), problems, passed: unread ? () => false : passed };
}

const LOAD_WORKER = new URL('./load-worker.js', import.meta.url);
// Beside the built bidder; absent when running from TypeScript sources (the test runner), which
// load on the calling thread.
const OFF_THREAD = existsSync(fileURLToPath(LOAD_WORKER));

/**
 * `loadPolicies` on a worker thread of its own, for a bidder that is serving: parsing the YAML of a
 * large catalog holds a thread for seconds (5,000 campaigns: 6.4 MB, 5-10 s), during which a
 * loop that did it answered nothing. Rejects as `loadPolicies` throws: a PolicyError with the same
 * problems, so the same message. One worker per load: a reload is rare, and the parse's garbage
 * goes with the worker's heap. The checked set comes back structured-cloned in parts
 * (`toParts`), each received and frozen in a turn of the caller's loop of its own: received
 * whole, 5,000 campaigns held it ~250 ms.
 */
export async function loadPoliciesOffThread(dir: string, overrides: Partial<Settings> = {}, running?: Settings, lastRates?: LastRates): Promise<Policies> {
  if (!OFF_THREAD) return loadPolicies(dir, overrides, running, lastRates);
  const answer = await new Promise<LoadAnswer>((resolve, reject) => {
    const worker = new Worker(LOAD_WORKER, { workerData: { dir, overrides, running, lastRates } });
    worker.once('message', resolve);
    worker.once('error', reject);
    // Messages are delivered before 'exit': after an answer this rejection is a no-op.
    worker.once('exit', (code) => reject(new Error(`the policy loading thread exited (code ${code}) without an answer`)));
  });
  if ('problems' in answer) throw new PolicyError(answer.problems);
  if ('error' in answer) throw new Error(answer.error);
  const campaigns: Campaign[] = [];
  for (const part of answer.parts) {
    await nextTurn();
    for (const c of deserialize(part) as Campaign[]) campaigns.push(deepFreeze(c));
  }
  return deepFreeze({ campaigns, ...(deserialize(answer.rest) as Omit<Policies, 'campaigns'>) });
}

/** Campaigns per part of a LoadAnswer: ~15 ms to receive at 250. */
const PART_CAMPAIGNS = 250;

/** What the load worker (load-worker.ts) answers: the policy set in parts, or why there is none. */
export type LoadAnswer = { parts: Uint8Array[]; rest: Uint8Array } | { problems: string[] } | { error: string };

/** A policy set as the load worker sends it: its campaigns in slices, then the rest, each serialized. */
export function toParts({ campaigns, ...rest }: Policies): { parts: Uint8Array[]; rest: Uint8Array } {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < campaigns.length; i += PART_CAMPAIGNS) parts.push(serialize(campaigns.slice(i, i + PART_CAMPAIGNS)));
  return { parts, rest: serialize(rest) };
}

/** C0 control characters but tab, LF and CR: XML 1.0 (§2.2 Char) allows them nowhere, escaped or not. */
const XML_CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/;

/**
 * The text a creative's markup carries (title, keywords, native data, and the URLs a VAST or native
 * answer writes, media files' and an overlay's inside CDATA, where nothing is escaped), each named
 * as in the policy file and by its JSON pointer in the creative. Read from a creative that may have
 * failed its schema: what is not a list or an object where one belongs is skipped.
 */
function creativeTexts(cr: Record<string, unknown>): Array<[string, string, string]> {
  const out: Array<[string, unknown, string]> = [
    ['title', cr.title, 'title'],
    ['landingUrl', cr.landingUrl, 'landingUrl'],
  ];
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  list(cr.keywords).forEach((k, i) => out.push([`keywords/${i}`, k, `keywords/${i}`]));
  const native = isRecord(cr.native) ? cr.native : {};
  for (const [name, value] of Object.entries(isRecord(native.data) ? native.data : {})) out.push([`native.data.${name}`, value, `native/data/${pointer(name)}`]);
  list(native.images).forEach((img, i) => out.push([`native.images/${i}.url`, isRecord(img) ? img.url : undefined, `native/images/${i}/url`]));
  list(cr.mediaFiles).forEach((f, i) => out.push([`mediaFiles/${i}.url`, isRecord(f) ? f.url : undefined, `mediaFiles/${i}/url`]));
  if (isRecord(cr.nonLinear)) out.push(['nonLinear.url', cr.nonLinear.url, 'nonLinear/url']);
  return out.filter((t): t is [string, string, string] => typeof t[1] === 'string');
}

/**
 * A creative's MIME types in the form requests are compared in (src/eligibility/mime.ts), so that
 * a file declared `audio/MPEG` or `audio/mp3` plays where a player asks for either.
 */
function canonicalCreativeMimes(cr: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const files = cr.mediaFiles as MediaFile[] | undefined;
  if (files) out.mediaFiles = files.map((f) => ({ ...f, mime: canonicalMime(f.mime) }));
  const nl = cr.nonLinear as NonLinearAd | undefined;
  if (nl) out.nonLinear = { ...nl, mime: canonicalMime(nl.mime) };
  if (Array.isArray(cr.mimes)) out.mimes = [...new Set((cr.mimes as string[]).map(canonicalMime))];
  if (typeof cr.mime === 'string') out.mime = canonicalMime(cr.mime);
  const native = cr.native as NativeAssets | undefined;
  if (native?.images) out.native = { ...native, images: native.images.map((i) => (i.mime === undefined ? i : { ...i, mime: canonicalMime(i.mime) })) };
  return out;
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
  if (ok('/ledger/redisUrl') && s.ledger.redisUrl && !/^rediss?:\/\/[^/\s]/.test(s.ledger.redisUrl)) out.push(`${where} /ledger/redisUrl: ${JSON.stringify(s.ledger.redisUrl)} is not a redis:// or rediss:// (TLS) URL with a host`);
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

/** Whether a catByTaxonomy path has no code, or an empty place between two codes. */
function leavesCodeOut(path: string): boolean {
  const parts = path.split('/').map((code) => code.trim());
  while (parts.length && parts[0] === '') parts.shift();
  while (parts.length && parts[parts.length - 1] === '') parts.pop();
  return parts.length === 0 || parts.includes('');
}
