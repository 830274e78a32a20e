/**
 * Which VAST version an imp accepts, read from its video or audio object: part of deciding whether
 * a video or audio creative fits the imp (eligibility), before any document is written
 * (src/respond/vast.ts writes it).
 */
export type VastVersion = '2.0' | '3.0' | '4.0' | '4.1' | '4.2';

/**
 * In-line VAST versions by OpenRTB protocol (AdCOM list "Creative Subtypes - Audio/Video"). The
 * wrapper protocols (5, 6, 8, 12, 14) and DAAST (9, 10) are not answered: the bidder only serves
 * in-line ads, and there is no published DAAST schema to check a DAAST document against (DAAST was
 * folded into VAST 4.1, which an audio imp can name with protocol 11 or 13).
 */
const PROTOCOL_VERSION: ReadonlyMap<number, VastVersion> = new Map([
  [2, '2.0'],
  [3, '3.0'],
  [7, '4.0'],
  [11, '4.1'],
  [13, '4.2'],
]);
const ORDER: readonly VastVersion[] = ['2.0', '3.0', '4.0', '4.1', '4.2'];

/**
 * The VAST version to answer an imp's video or audio object with: the highest in-line version its
 * `protocols` (or the 2.5 `protocol`) allow, or null when none is allowed. Without a list: VAST 3.0
 * for video (the version players most widely accept), 4.2 for audio (the first with audio in VAST).
 * On a `secure` imp, the highest of 2.0 and 3.0 where the list allows one, or there is no list
 * (audio too: a 3.0 document carries an audio file as well): a VAST 4 document
 * declares the namespace `http://www.iab.com/VAST`, an "http:" that secure-markup checks (Prebid
 * Server's) refuse, so there it goes without it (src/respond/vast.ts) and no longer validates
 * against its schema; a 2.0 or 3.0 one is both secure and valid.
 */
export function vastVersionFor(media: Record<string, unknown>, audio: boolean, secure = false): VastVersion | null {
  const unlisted = audio ? '4.2' : '3.0';
  return (secure ? highestAllowed(media, unlisted, false, '3.0') : null) ?? highestAllowed(media, unlisted, false);
}

/**
 * The VAST version to answer a video overlay (`linearity` 2) with: as vastVersionFor, but VAST 4.0
 * only where it is the one version allowed. The published 4.0 schema (4.0.7) declares no
 * attributes on an in-line NonLinear, so a 4.0 overlay goes without the width and height a player
 * lays it out by; 2.0, 3.0, 4.1 and 4.2 carry them. On a `secure` imp, 2.0 or 3.0 first, as there.
 */
export function overlayVastVersionFor(media: Record<string, unknown>, secure = false): VastVersion | null {
  return (secure ? highestAllowed(media, '3.0', true, '3.0') : null) ?? highestAllowed(media, '3.0', true) ?? highestAllowed(media, '3.0', false);
}

/** The highest listed version up to `most` (4.0 excepted where `sized`); `unlisted` where there is no list. */
function highestAllowed(media: Record<string, unknown>, unlisted: VastVersion, sized: boolean, most: VastVersion = '4.2'): VastVersion | null {
  // An empty `protocols` names nothing: the 2.5 `protocol` beside it is read, as where it is absent.
  const list = Array.isArray(media.protocols) && media.protocols.length > 0 ? media.protocols : typeof media.protocol === 'number' ? [media.protocol] : null;
  const top = ORDER.indexOf(most);
  // No list allows any version: on a secure imp, `most` (3.0) as where a list allows it, so an
  // audio imp's 4.2 does not go without its namespace and fail its schema.
  if (!list) return ORDER.indexOf(unlisted) <= top ? unlisted : most;
  let best = -1;
  for (const p of list) {
    const v = typeof p === 'number' ? PROTOCOL_VERSION.get(p) : undefined;
    const i = v === undefined ? -1 : ORDER.indexOf(v);
    if (i >= 0 && i <= top && !(sized && v === '4.0')) best = Math.max(best, i);
  }
  return best < 0 ? null : ORDER[best];
}
