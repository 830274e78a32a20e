/**
 * The JSON schemas of the policy files (campaigns.yaml, exchanges.yaml, currency.yaml; bidder.yaml's
 * is settings.ts's SETTINGS_SCHEMA), compiled once into `validators`. A schema says the form of each
 * value; what depends on other values (a day of the calendar, an exchange's currency with no rate,
 * a cap the pacer would not hold) is checked by `loadPolicies` and `settingsOf` on the values that
 * passed here.
 */
import { Ajv } from 'ajv';
import { MAX_CATEGORY_LENGTH } from './limits.js';
import { SETTINGS_SCHEMA } from './settings.js';
import { ALL_FORMATS } from './exchange-settings.js';
import { NATIVE_DATA_TYPES } from '../types.js';
import { FREQ_MAX_COUNT, FREQ_MAX_WINDOW_SEC } from '../freqcap/freqcap.js';

export const IMAGE_DIM = 8;
/** The largest |value| an imageEmbedding may hold: twice the range the shipped models were trained on. */
export const IMAGE_BOUND = 2;

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
export const validators = {
  campaigns: ajv.compile(CAMPAIGNS_FILE_SCHEMA),
  exchanges: ajv.compile(EXCHANGES_FILE_SCHEMA),
  currency: ajv.compile(CURRENCY_FILE_SCHEMA),
  settings: ajv.compile(SETTINGS_SCHEMA),
};
