import type { NativeFill } from '../eligibility/native.js';

type Obj = Record<string, any>;

/**
 * The native response (Native 1.2 §5; 1.0/1.1 inside a `native` object). `impUrl` counts the
 * impression: as an img event tracker where the 1.2 request offers one, else in `imptrackers`.
 */
export function nativeMarkup(fill: NativeFill, clickUrl: string, impUrl: string): string {
  const r = fill.request;
  const body: Obj = { ver: r.ver, assets: fill.assets, link: { url: clickUrl } };
  if (r.tracker === 'eventtracker') body.eventtrackers = [{ event: 1, method: 1, url: impUrl }];
  else if (r.tracker === 'imptrackers') body.imptrackers = [impUrl];
  return JSON.stringify(r.legacy ? { native: body } : body);
}
