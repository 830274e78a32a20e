/**
 * Text and JSON written as UTF-8 straight into a buffer kept across calls: the bytes that
 * building a string with `+` (or JSON.stringify) and then encoding it would give, without the
 * intermediate strings. On the bid path those were most of what a request allocated: a cons
 * string per `+`, the flat copy V8 makes before the string is encoded, a heap string per number.
 * ASCII is copied a character at a time; anything else goes through Buffer's UTF-8 encoder (a
 * lone surrogate becomes U+FFFD there, as it does when a string is written to a stream or a socket).
 */
export class ByteWriter {
  buf: Buffer;
  pos = 0;

  constructor(size = 4096) {
    this.buf = Buffer.allocUnsafeSlow(size);
  }

  /** Room for `n` more bytes: the buffer doubles (what is written is kept). */
  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const grown = Buffer.allocUnsafeSlow(size);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  /** `s` as UTF-8. */
  text(s: string): void {
    const n = s.length;
    // A call into Buffer's encoder costs about as much as copying this many characters here.
    if (n > TEXT_NATIVE_CHARS) {
      this.room(3 * n);
      this.pos += this.buf.write(s, this.pos, 'utf8');
      return;
    }
    this.room(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        this.room(3 * n);
        this.pos += this.buf.write(s, this.pos, 'utf8');
        return;
      }
      buf[p++] = c;
    }
    this.pos = p;
  }

  /**
   * Bytes encoded once (`utf8()`, module constants): one native copy. A character copied by hand
   * costs ~40 instructions (charCodeAt and a checked store) and a call ~100, a native copy ~320 in
   * all (callgrind): for a literal of 8 characters or more this is the cheaper way.
   */
  bytes(b: Uint8Array): void {
    const n = b.length;
    if (this.pos + n > this.buf.length) this.room(n);
    this.buf.set(b, this.pos);
    this.pos += n;
  }

  /** A copy of the bytes already written at [start, end): one native copy. */
  copyWithin(start: number, end: number): void {
    const n = end - start;
    if (this.pos + n > this.buf.length) this.room(n);
    this.buf.copyWithin(this.pos, start, end);
    this.pos += n;
  }

  /** `s` as JSON.stringify writes it (quoted, escaped). */
  str(s: string): void {
    const n = s.length;
    this.room(n + 2);
    const buf = this.buf;
    const start = this.pos;
    let p = start;
    buf[p++] = 0x22;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      // Controls, quote and backslash need an escape; past ASCII, surrogates may (when lone) and
      // the rest needs the UTF-8 encoder: JSON.stringify's text, encoded, for all of them.
      if (c < 0x20 || c === 0x22 || c === 0x5c || c >= 0x80) {
        this.pos = start;
        this.text(JSON.stringify(s));
        return;
      }
      buf[p++] = c;
    }
    buf[p++] = 0x22;
    this.pos = p;
  }

  /** `n` as JSON.stringify writes it: `null` when not finite. */
  num(n: number): void {
    if (Number.isFinite(n)) this.number(n);
    else this.text('null');
  }

  /** `n` as String(n) writes it. */
  number(n: number): void {
    // Whole numbers digit by digit (a timestamp would otherwise be a heap string each time);
    // -0 is written 0, as String does.
    if (!Number.isSafeInteger(n)) return this.text('' + n);
    this.room(17);
    const buf = this.buf;
    if (n < 0) ((buf[this.pos++] = 0x2d), (n = -n));
    let digits = 1;
    for (let m = n; m >= 10; m = Math.floor(m / 10)) digits++;
    let p = this.pos + digits;
    this.pos = p;
    do {
      const q = Math.floor(n / 10);
      buf[--p] = 0x30 + (n - q * 10);
      n = q;
    } while (n > 0);
  }

  /** `s` as encodeURIComponent writes it (which throws on a lone surrogate, as here). */
  uri(s: string): void {
    const n = s.length;
    this.room(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80 || URI_KEEP[c] === 0) return this.text(encodeURIComponent(s));
      buf[p++] = c;
    }
    this.pos = p;
  }

  /**
   * The bytes written since `from` made XML text: `&`, `<`, `>`, `"` and `'` as `&#NN;`, as a
   * string replace would (none of them is part of a multi-byte UTF-8 sequence).
   */
  escapeXmlFrom(from: number): void {
    let extra = 0;
    for (let i = from; i < this.pos; i++) if (XML_CODE[this.buf[i]] !== 0) extra += 4;
    if (extra === 0) return;
    this.room(extra);
    const buf = this.buf;
    // Moved right to left, so each byte is read before anything is written over it.
    let to = this.pos + extra;
    for (let i = this.pos - 1; i >= from; i--) {
      const c = buf[i];
      const code = XML_CODE[c];
      if (code === 0) {
        buf[--to] = c;
        continue;
      }
      buf[--to] = 0x3b;
      buf[--to] = 0x30 + (code % 10);
      buf[--to] = 0x30 + Math.floor(code / 10);
      buf[--to] = 0x23;
      buf[--to] = 0x26;
    }
    this.pos += extra;
  }

  /** A copy of the bytes written since `from` (a pooled Buffer when small). */
  copy(from = 0): Buffer {
    const out = Buffer.allocUnsafe(this.pos - from);
    this.buf.copy(out, 0, from, this.pos);
    return out;
  }
}

const TEXT_NATIVE_CHARS = 32;

/** The UTF-8 bytes of `s`, for `ByteWriter.bytes`: a literal encoded once where it is declared. */
export function utf8(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s, 'utf8'));
}

/** The ASCII characters encodeURIComponent leaves as they are (1). */
const URI_KEEP = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()") URI_KEEP[c.charCodeAt(0)] = 1;

/** Per byte, the decimal character reference XML text writes it as (0: as it is). */
const XML_CODE = new Uint8Array(256);
for (const c of '&<>"\'') XML_CODE[c.charCodeAt(0)] = c.charCodeAt(0);
