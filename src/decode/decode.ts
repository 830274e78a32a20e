import { gunzipSync } from 'node:zlib';
import { isUtf8 } from 'node:buffer';
import { BidderError } from '../errors/codes.js';

export interface DecodeLimits {
  maxDecompressedBytes: number;
  maxJsonDepth: number;
}

/**
 * Reject JSON nested deeper than `max` before parsing, by one pass over the bytes that skips
 * string contents. Deep nesting is how a small body makes a parser or a later walker recurse far.
 */
function checkDepth(buf: Buffer, max: number): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === 0x5c) i++; // skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) throw new BidderError('TOO_DEEP', `more than ${max} levels`);
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
}

/**
 * Whether the text holds more than `max` opening brackets (`{` or `[`, in strings too): only then
 * can it nest deeper than `max`, so only then is checkDepth's walk over every byte needed. A
 * bench request holds 14; the native indexOf finds them for a fraction of the walk's cost.
 * The text is the body's UTF-8 decoded, whose ASCII characters are its ASCII bytes, one for one.
 */
function openingsOver(text: string, max: number): boolean {
  let n = 0;
  for (let i = text.indexOf('{'); i !== -1; i = text.indexOf('{', i + 1)) if (++n > max) return true;
  for (let i = text.indexOf('['); i !== -1; i = text.indexOf('[', i + 1)) if (++n > max) return true;
  return false;
}

// Any 2.x: the 2.x releases are one format read by this schema (2.3 and 2.4 senders, IAB's dated
// release names such as 2.6-202309), and the body is validated whatever the header says. 3.x is
// OpenRTB 3.0 over AdCOM, another format. A bare "2" is the major version alone, as some senders
// write it.
const VERSION = /^2(\.\d+([.-]\S*)?)?$/;

/**
 * The request's own headers before its body is read: a JSON content type (browsers, Prebid.js,
 * send JSON as text/plain: a "simple" request needs no CORS preflight) and an OpenRTB version this
 * bidder speaks (`x-openrtb-version` 2.x; none is fine). Throws the coded error.
 */
export function checkHeaders(contentType: string, version: string): void {
  // The media type before any parameters, case-blind (RFC 9110 §8.3.1): a prefix match let
  // application/json-patch+json or text/plainfoo in.
  const semi = contentType.indexOf(';');
  const ct = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (ct !== '' && ct !== 'application/json' && ct !== 'text/plain') throw new BidderError('UNSUPPORTED_MEDIA_TYPE', contentType);
  if (version !== '' && !VERSION.test(version)) throw new BidderError('BAD_VERSION', version);
}

/**
 * Turn a request body into a JSON value: gunzip when the exchange sent gzip (inflation capped so
 * a gzip bomb stops at the limit), check UTF-8 and nesting depth, parse.
 */
export function decodeBody(body: Buffer, contentEncoding: string, gzipAllowed: boolean, limits: DecodeLimits): unknown {
  let raw = body;
  // Content codings are case-insensitive (RFC 9110 §8.4.1): GZIP is gzip, and x-gzip is too (§8.4.1.3).
  const coding = contentEncoding.trim().toLowerCase();
  if (coding !== '' && coding !== 'identity') {
    if ((coding !== 'gzip' && coding !== 'x-gzip') || !gzipAllowed) throw new BidderError('UNSUPPORTED_ENCODING', contentEncoding);
    try {
      raw = gunzipSync(body, { maxOutputLength: limits.maxDecompressedBytes });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new BidderError('DECOMPRESSED_TOO_LARGE', `over ${limits.maxDecompressedBytes} bytes`);
      }
      throw new BidderError('BAD_GZIP');
    }
  }
  if (!isUtf8(raw)) throw new BidderError('BAD_UTF8');
  // A UTF-8 byte order mark, which .NET's Encoding.UTF8 writes: a parser may ignore it (RFC 8259 §8.1).
  if (raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf) raw = raw.subarray(3);
  const text = raw.toString('utf8');
  if (openingsOver(text, limits.maxJsonDepth)) checkDepth(raw, limits.maxJsonDepth);
  try {
    return JSON.parse(text);
  } catch {
    throw new BidderError('BAD_JSON');
  }
}

const TMAX_KEY = Buffer.from('"tmax"');

/** Whether byte `at` of a JSON object text starts a key of the outermost object (not nested, not inside a string). */
function isTopLevelKey(body: Buffer, at: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < at; i++) {
    const c = body[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return !inString && depth === 1;
}

/**
 * The request's `tmax` read from the raw bytes without parsing them, for shedding a request that
 * waited too long before the loop could read it (parsing is most of what a refused request costs).
 * `null` when there is no `"tmax"` key; `undefined` when the bytes cannot say (encoded, or not a
 * plain integer after the key). The quick form reads the first `"tmax"` key wherever it is;
 * `confirm` (for a refusal: it scans the rest of the bytes and those before the key) also makes
 * sure it is the only one and a key of the outermost object, else `undefined`.
 */
export function peekTmax(body: Buffer, contentEncoding: string, confirm = false): number | null | undefined {
  if (contentEncoding !== '' && contentEncoding !== 'identity') return undefined;
  const at = body.indexOf(TMAX_KEY);
  if (at < 0) return null;
  if (confirm && (body.indexOf(TMAX_KEY, at + TMAX_KEY.length) >= 0 || !isTopLevelKey(body, at))) return undefined;
  let i = at + TMAX_KEY.length;
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++;
  if (body[i++] !== 0x3a) return undefined; // ':'
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++;
  let n = 0;
  const start = i;
  for (; i < body.length && body[i] >= 0x30 && body[i] <= 0x39 && i - start < 9; i++) n = n * 10 + (body[i] - 0x30);
  if (i === start || (i < body.length && (body[i] === 0x2e || body[i] === 0x65 || body[i] === 0x45 || (body[i] >= 0x30 && body[i] <= 0x39)))) return undefined;
  return n;
}
