import type { Creative, MediaFile } from '../types.js';
import type { VastVersion } from '../eligibility/vast-version.js';

/**
 * VAST documents (IAB VAST 2.0, 3.0, 4.0, 4.1, 4.2) for video and audio bids: one InLine ad with
 * an Impression, an Error URL, and a Linear creative (duration, start/complete tracking, click,
 * the creative's media files) or a NonLinear one (a static image) where the imp asks for it.
 * Every document this module can write validates against the IAB schema of its version
 * (test/vast.test.ts runs `xmllint --schema` over them), a VAST 4 one for a secure imp once its
 * namespace is declared (see `vastMarkup`).
 */

/** URLs a VAST document carries; all are the bidder's own (signed) notice routes but `click`. */
export interface VastUrls {
  /** Unique per serving (VAST 4.1+ AdServingId): the bid id. */
  bidId: string;
  /** Counts the impression (the markup's impression tracker). */
  impression: string;
  click: string;
  /**
   * The player reports an error here (counted). Without the `[ERRORCODE]` macro: the VAST schemas
   * type the element xs:anyURI, which a literal `[` fails (xmllint), and an encoded one players do not expand.
   */
  error: string;
  start: string;
  complete: string;
}

const XML_ESCAPES: ReadonlyArray<readonly [string, string]> = [
  ['&', '&amp;'],
  ['<', '&lt;'],
  ['>', '&gt;'],
  ['"', '&quot;'],
  ["'", '&apos;'],
];

/** C0 control characters but tab, LF and CR, which XML 1.0 allows nowhere, not even as references. */
const XML_CONTROLS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g;

/**
 * `s` as XML text or attribute value. Control characters are dropped: policy loading refuses them
 * in a creative's text, so this only guards a creative that came some other way from a document no
 * player can parse.
 */
export function escapeXml(s: string): string {
  let out = s;
  for (const [c, e] of XML_ESCAPES) if (out.includes(c)) out = out.replaceAll(c, e);
  return out.replace(XML_CONTROLS, '');
}

/** A URL as element content; CDATA cannot hold `]]>`, which no URL of ours contains, but escape if one does. */
function url(u: string): string {
  return u.includes(']]>') ? escapeXml(u) : `<![CDATA[${u}]]>`;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** `HH:MM:SS` or `HH:MM:SS.mmm` (VAST 3+ §3.10.1; VAST 2's xs:time takes the same form). */
export function vastDuration(sec: number): string {
  const ms = Math.max(0, Math.round(sec * 1000));
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  const f = ms % 1000;
  return `${pad(h)}:${pad(m)}:${pad(s)}${f ? `.${pad(f, 3)}` : ''}`;
}

/**
 * The VAST document for `c` in `version`; linear unless `nonLinear` (the creative must have what it
 * asks), with `mediaFiles` (default: all the creative's; the bid path passes those the imp can play).
 * `secure` (the imp's `secure` 1): a VAST 4 document goes without its default namespace, whose name
 * `http://www.iab.com/VAST` is an "http:" in the markup that Prebid Server's secure-markup check
 * (`markupIsNotSecure`) takes for insecure content; players find VAST elements by name. Such a
 * document no longer validates against the IAB schema, so eligibility answers a secure imp in 2.0
 * or 3.0 wherever its protocols allow (src/eligibility/vast-version.ts).
 */
export function vastMarkup(c: Creative, version: VastVersion, nonLinear: boolean, u: VastUrls, mediaFiles: readonly MediaFile[] = c.mediaFiles ?? [], secure = false): string {
  const v4 = version.startsWith('4');
  const id = escapeXml(c.id);
  const tracking =
    `<TrackingEvents><Tracking event="start">${url(u.start)}</Tracking>` + `<Tracking event="complete">${url(u.complete)}</Tracking></TrackingEvents>`;
  let creative: string;
  if (nonLinear) {
    const nl = c.nonLinear!;
    creative =
      // The published VAST 4.0 schema (4.0.7) declares no attributes on an in-line NonLinear.
      (version === '4.0' ? '<NonLinear>' : `<NonLinear width="${nl.w}" height="${nl.h}"` + (c.durationSec ? ` minSuggestedDuration="${vastDuration(c.durationSec)}">` : '>')) +
      `<StaticResource creativeType="${escapeXml(nl.mime)}">${url(nl.url)}</StaticResource>` +
      `<NonLinearClickThrough>${url(u.click)}</NonLinearClickThrough></NonLinear>`;
    creative = `<NonLinearAds>${tracking}${creative}</NonLinearAds>`;
  } else {
    let files = '';
    for (const f of mediaFiles) {
      files +=
        `<MediaFile delivery="${f.delivery ?? 'progressive'}" type="${escapeXml(f.mime)}" width="${f.w ?? 0}" height="${f.h ?? 0}"` +
        (f.bitrateKbps ? ` bitrate="${Math.round(f.bitrateKbps)}"` : '') +
        `>${url(f.url)}</MediaFile>`;
    }
    const clicks = `<VideoClicks><ClickThrough>${url(u.click)}</ClickThrough></VideoClicks>`;
    const media = `<MediaFiles>${files}</MediaFiles>`;
    const duration = `<Duration>${vastDuration(c.durationSec ?? 0)}</Duration>`;
    // VAST 4's Linear extends a base (Icons, TrackingEvents) that comes before the duration, and
    // puts the media files before the clicks.
    creative =
      `<Linear>${v4 ? tracking + duration : duration + tracking}` +
      (v4 ? media + clicks : clicks + media) +
      '</Linear>';
  }
  // VAST 4 §3.7.1: UniversalAdId is required in every Creative (the creative id in the bidder's own
  // registry); 4.0 carries the id in idValue, 4.1+ as content, after the Linear/NonLinearAds.
  const universal =
    version === '4.0' ? `<UniversalAdId idRegistry="rtb-bidder" idValue="${id}"/>` : v4 ? `<UniversalAdId idRegistry="rtb-bidder">${id}</UniversalAdId>` : '';
  const head = v4 && !secure ? `<VAST version="${version}" xmlns="http://www.iab.com/VAST">` : `<VAST version="${version}">`;
  const serving = version === '4.1' || version === '4.2' ? `<AdServingId>${escapeXml(u.bidId)}</AdServingId>` : '';
  const error = `<Error>${url(u.error)}</Error>`;
  const impression = `<Impression>${url(u.impression)}</Impression>`;
  const title = `<AdTitle>${escapeXml(c.title)}</AdTitle>`;
  const creatives = `<Creatives><Creative id="${id}">${creative}${universal}</Creative></Creatives>`;
  // VAST 4's InLine is a sequence: the ad definition base (AdSystem, Error, Impression) comes first.
  const body = v4 ? `${error}${impression}${serving}${title}` : `${title}${error}${impression}`;
  return `${head}<Ad id="${id}"><InLine><AdSystem>rtb-bidder</AdSystem>${body}${creatives}</InLine></Ad></VAST>`;
}
