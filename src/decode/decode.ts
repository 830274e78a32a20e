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
 * Turn a request body into a JSON value: gunzip when the exchange sent gzip (inflation capped so
 * a gzip bomb stops at the limit), check UTF-8 and nesting depth, parse.
 */
export function decodeBody(body: Buffer, contentEncoding: string, gzipAllowed: boolean, limits: DecodeLimits): unknown {
  let raw = body;
  if (contentEncoding !== '' && contentEncoding !== 'identity') {
    if (contentEncoding !== 'gzip' || !gzipAllowed) throw new BidderError('UNSUPPORTED_ENCODING', contentEncoding);
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
  checkDepth(raw, limits.maxJsonDepth);
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new BidderError('BAD_JSON');
  }
}
