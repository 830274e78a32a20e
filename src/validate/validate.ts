import type { BidRequest } from 'iab-openrtb/v26';
import { BidderError } from '../errors/codes.js';

export interface ValidateLimits {
  maxTmaxMs: number;
}

const CURRENCY = /^[A-Z]{3}$/;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeError(path: string, want: string): BidderError {
  return new BidderError('BAD_FIELD_TYPE', `${path} must be ${want}`);
}

function optObject(o: Record<string, unknown>, key: string, path: string): Record<string, unknown> | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw typeError(`${path}.${key}`, 'an object');
  return v;
}

function optStringArray(o: Record<string, unknown>, key: string, path: string): void {
  const v = o[key];
  if (v === undefined || v === null) return;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw typeError(`${path}.${key}`, 'an array of strings');
}

function optIntArray(o: Record<string, unknown>, key: string, path: string): void {
  const v = o[key];
  if (v === undefined || v === null) return;
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x))) throw typeError(`${path}.${key}`, 'an array of integers');
}

function optNumber(o: Record<string, unknown>, key: string, path: string): void {
  const v = o[key];
  if (v !== undefined && v !== null && (typeof v !== 'number' || !Number.isFinite(v))) throw typeError(`${path}.${key}`, 'a number');
}

function optString(o: Record<string, unknown>, key: string, path: string): void {
  const v = o[key];
  if (v !== undefined && v !== null && typeof v !== 'string') throw typeError(`${path}.${key}`, 'a string');
}

function checkFloor(o: Record<string, unknown>, path: string): void {
  const f = o.bidfloor;
  if (f !== undefined && (typeof f !== 'number' || !Number.isFinite(f) || f < 0)) {
    throw new BidderError('BAD_FLOOR', `${path}.bidfloor is ${JSON.stringify(f)}`);
  }
  const cur = o.bidfloorcur;
  if (cur !== undefined && (typeof cur !== 'string' || !CURRENCY.test(cur))) {
    throw new BidderError('BAD_CURRENCY', `${path}.bidfloorcur is ${JSON.stringify(cur)}`);
  }
}

/**
 * Check what the bidder relies on in an OpenRTB 2.5/2.6 BidRequest (§3.2.1 onwards) and nothing
 * more: extra or unknown fields pass, since exchanges add their own. Throws a BidderError naming
 * the first problem; returns the request typed.
 */
export function validateRequest(v: unknown, limits: ValidateLimits): BidRequest {
  if (!isObj(v)) throw new BidderError('NOT_OBJECT');
  if (typeof v.id !== 'string' || v.id.length === 0) throw new BidderError('MISSING_ID');
  const imps = v.imp;
  if (!Array.isArray(imps) || imps.length === 0) throw new BidderError('MISSING_IMP');
  const seen = new Set<string>();
  for (let i = 0; i < imps.length; i++) {
    const imp = imps[i];
    const path = `imp[${i}]`;
    if (!isObj(imp) || typeof imp.id !== 'string' || imp.id.length === 0) throw new BidderError('BAD_IMP', path);
    if (seen.has(imp.id)) throw new BidderError('DUPLICATE_IMP_ID', JSON.stringify(imp.id));
    seen.add(imp.id);
    let media = 0;
    for (const m of ['banner', 'video', 'native', 'audio'] as const) {
      const o = imp[m];
      if (o === undefined || o === null) continue;
      if (!isObj(o)) throw new BidderError('BAD_MEDIA', `${path}.${m}`);
      media++;
    }
    if (media === 0) throw new BidderError('NO_MEDIA', path);
    checkFloor(imp, path);
    const banner = imp.banner as Record<string, unknown> | undefined;
    if (banner) {
      optNumber(banner, 'w', `${path}.banner`);
      optNumber(banner, 'h', `${path}.banner`);
      optIntArray(banner, 'battr', `${path}.banner`);
      const fmt = banner.format;
      if (fmt !== undefined && fmt !== null && (!Array.isArray(fmt) || !fmt.every(isObj))) throw typeError(`${path}.banner.format`, 'an array of objects');
    }
    for (const m of ['video', 'audio'] as const) {
      const o = imp[m] as Record<string, unknown> | undefined;
      if (!o) continue;
      optStringArray(o, 'mimes', `${path}.${m}`);
      optNumber(o, 'minduration', `${path}.${m}`);
      optNumber(o, 'maxduration', `${path}.${m}`);
      optIntArray(o, 'battr', `${path}.${m}`);
    }
    const native = imp.native as Record<string, unknown> | undefined;
    if (native) optIntArray(native, 'battr', `${path}.native`);
    const pmp = optObject(imp, 'pmp', path);
    if (pmp) {
      const deals = pmp.deals;
      if (deals !== undefined && deals !== null) {
        if (!Array.isArray(deals)) throw typeError(`${path}.pmp.deals`, 'an array');
        deals.forEach((d, j) => {
          if (!isObj(d) || typeof d.id !== 'string') throw typeError(`${path}.pmp.deals[${j}]`, 'an object with a string id');
          checkFloor(d, `${path}.pmp.deals[${j}]`);
        });
      }
    }
  }
  if (v.tmax !== undefined && v.tmax !== null) {
    if (!Number.isInteger(v.tmax) || (v.tmax as number) <= 0 || (v.tmax as number) > limits.maxTmaxMs) {
      throw new BidderError('BAD_TMAX', `tmax is ${JSON.stringify(v.tmax)}`);
    }
  }
  if (v.at !== undefined && v.at !== null && (!Number.isInteger(v.at) || (v.at as number) < 1)) throw new BidderError('BAD_AUCTION_TYPE');
  const cur = v.cur;
  if (cur !== undefined && cur !== null) {
    if (!Array.isArray(cur) || !cur.every((c) => typeof c === 'string' && CURRENCY.test(c))) {
      throw new BidderError('BAD_CURRENCY', `cur is ${JSON.stringify(cur)}`);
    }
  }
  optStringArray(v, 'bcat', 'request');
  optStringArray(v, 'badv', 'request');
  optStringArray(v, 'bapp', 'request');
  const site = optObject(v, 'site', 'request');
  const app = optObject(v, 'app', 'request');
  for (const [name, o] of [['site', site], ['app', app]] as const) {
    if (!o) continue;
    optString(o, 'id', name);
    optString(o, 'domain', name);
    optString(o, 'bundle', name);
    optStringArray(o, 'cat', name);
    // Eligibility matches section and page categories with the site's own (§3.2.13, §3.2.14).
    optStringArray(o, 'sectioncat', name);
    optStringArray(o, 'pagecat', name);
    const pub = optObject(o, 'publisher', name);
    if (pub) optString(pub, 'id', `${name}.publisher`);
  }
  const device = optObject(v, 'device', 'request');
  if (device) {
    optNumber(device, 'devicetype', 'device');
    optString(device, 'os', 'device');
    // The pseudonymous user key may be derived from the advertising id (§3.2.18).
    optString(device, 'ifa', 'device');
    const geo = optObject(device, 'geo', 'device');
    if (geo) {
      optString(geo, 'country', 'device.geo');
      optString(geo, 'region', 'device.geo');
    }
  }
  const user = optObject(v, 'user', 'request');
  if (user) {
    optString(user, 'id', 'user');
    optString(user, 'buyeruid', 'user');
    optString(user, 'consent', 'user');
    const data = user.data;
    if (data !== undefined && data !== null && (!Array.isArray(data) || !data.every(isObj))) throw typeError('user.data', 'an array of objects');
  }
  const regs = optObject(v, 'regs', 'request');
  if (regs) {
    optNumber(regs, 'coppa', 'regs');
    optNumber(regs, 'gdpr', 'regs');
    optString(regs, 'us_privacy', 'regs');
  }
  return v as unknown as BidRequest;
}
