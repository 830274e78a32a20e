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
    if (!Number.isFinite(n)) return this.text('null');
    // Whole numbers digit by digit (a timestamp would otherwise be a heap string per record);
    // -0 is written 0, as JSON.stringify does.
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

  /** A copy of the bytes written since `from` (a pooled Buffer when small). */
  copy(from = 0): Buffer {
    const out = Buffer.allocUnsafe(this.pos - from);
    this.buf.copy(out, 0, from, this.pos);
    return out;
  }
}
