import { existsSync, statSync } from 'node:fs';
import { isDaypartZone } from '../util/zone.js';
import { isCountryCode } from '../util/country.js';
import type { Campaign, MediaFile, NativeAssets, NonLinearAd } from '../types.js';
import { canonicalMime } from '../eligibility/mime.js';
import type { Settings } from './settings.js';
import { ipRangeProblem } from '../util/ip.js';
import { ALL_FORMATS, DEFAULT_SEAT, type ExchangeSettings } from './exchange-settings.js';
import { IMAGE_BOUND, IMAGE_DIM, validators } from './policy-schemas.js';
import { PolicyError, deepFreeze, isRecord, pointer, readDoc, validate } from './policy-files.js';
import { rateMoves, type LastRates } from './rates.js';
import { settingsOf } from './settings-read.js';
import { XML_CONTROL, creativeTexts } from './creative-texts.js';

// Moved out of this file, still imported from here by the rest of the bidder.
export { ALL_FORMATS, DEFAULT_SEAT, type ExchangeSettings } from './exchange-settings.js';
export { PolicyError, freezePolicies } from './policy-files.js';
export { MAX_RATE_MOVE, rateMoves, type LastRates, type RateChange } from './rates.js';
export { readSettings } from './settings-read.js';
export { loadPoliciesOffThread, toParts, type LoadAnswer } from './policies-off-thread.js';

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

/**
 * Load and validate a policy directory: campaigns.yaml, exchanges.yaml, currency.yaml and the
 * optional bidder.yaml (settings), overlaid with `overrides` (environment and flags). Throws one
 * PolicyError listing every problem in every file. `running`: the settings of a serving bidder
 * (a reload): settings are read at start only, so the campaigns are checked against those that
 * run, not bidder.yaml's, whose changes wait for a restart (a cap the running curve pacer ignores
 * passed when bidder.yaml said value, and campaigns the running value pacer holds were refused
 * when it said curve).
 */
export function loadPolicies(dir: string, overrides: Partial<Settings> = {}, running?: Settings, lastRates?: LastRates): Policies {
  const problems: string[] = [];
  if (!existsSync(dir)) throw new PolicyError([`policy directory ${dir} does not exist`]);
  // A file named where the folder goes: said so, not as each policy file missing from it.
  if (!statSync(dir).isDirectory()) throw new PolicyError([`policy directory ${dir} is a file, not a folder`]);

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

  // Frozen as a structured clone, as a set loaded on another thread arrives (policies-off-thread.ts):
  // V8 gives an object built by spread (`{ ...c, creatives }`, a media file's `{ ...f, mime }`) a
  // map that freezing cannot share, so each froze into a map of its own (1,397 maps for 1,404 media
  // files of a generated 1,000-campaign catalog, 293 for its 1,000 campaigns), and every read of
  // their fields on the bid path was V8's megamorphic lookup. A clone's objects are built property
  // by property and freeze into one map per shape.
  return deepFreeze(structuredClone({ campaigns, exchanges, ratesPerUsd, confirmedRates, settings: merged }));
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

/** Whether a catByTaxonomy path has no code, or an empty place between two codes. */
function leavesCodeOut(path: string): boolean {
  const parts = path.split('/').map((code) => code.trim());
  while (parts.length && parts[0] === '') parts.shift();
  while (parts.length && parts[parts.length - 1] === '') parts.pop();
  return parts.length === 0 || parts.includes('');
}
