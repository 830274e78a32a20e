import type { NativeFill } from '../eligibility/native.js';

type Obj = Record<string, any>;

/**
 * The native response (Native 1.2 §5), inside a `native` object where a 1.0 request came in one.
 * A plain request gets a plain answer, and so does a 1.1 or 1.2 request in the old wrapper: those
 * versions have none, and Prebid.js and Prebid Server read the assets at the top level. `impUrl` counts the impression: as an
 * img event tracker where the 1.2 request offers one, a js one where it offers only that, else in
 * `imptrackers`. `privacyUrl` (the
 * campaign's page on its targeting) is linked as `privacy` only where the request says it supports
 * one (1.2 §5.1).
 */
export function nativeMarkup(fill: NativeFill, clickUrl: string, impUrl: string, privacyUrl?: string): string {
  const r = fill.request;
  const body: Obj = { ver: r.ver, assets: fill.assets, link: { url: clickUrl } };
  if (r.tracker === 'imptrackers') body.imptrackers = [impUrl];
  else body.eventtrackers = [{ event: 1, method: r.tracker === 'eventtracker' ? 1 : 2, url: impUrl }];
  if (privacyUrl && r.privacy) body.privacy = privacyUrl;
  return JSON.stringify(r.wrapped ? { native: body } : body);
}
