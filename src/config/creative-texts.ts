/**
 * The text a creative's markup carries (`creativeTexts`), for the check that no policy file puts a
 * character there that no VAST (XML) document can carry, escaped or not (`XML_CONTROL`).
 * `loadPolicies` runs it on every creative, on the values that passed their schema.
 */
import { isRecord, pointer } from './policy-files.js';

/** C0 control characters but tab, LF and CR: XML 1.0 (§2.2 Char) allows them nowhere, escaped or not. */
export const XML_CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/;

/**
 * The text a creative's markup carries (title, keywords, native data, and the URLs a VAST or native
 * answer writes, media files' and an overlay's inside CDATA, where nothing is escaped), each named
 * as in the policy file and by its JSON pointer in the creative. Read from a creative that may have
 * failed its schema: what is not a list or an object where one belongs is skipped.
 */
export function creativeTexts(cr: Record<string, unknown>): Array<[string, string, string]> {
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
