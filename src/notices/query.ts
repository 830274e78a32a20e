/** What the notice handler reads of a query: a name's first value, as URLSearchParams gives it. */
export interface QueryParams {
  get(name: string): string | null;
}

/**
 * A query whose every character is ASCII other than '%' and '+': URLSearchParams would decode
 * nothing in it, so a name's first value is the raw text between its '=' and the next '&'. The
 * pairs' bounds are found in one pass and nothing else is built until a value is asked for:
 * URLSearchParams walks and copies every name and value of a ~300-character notice query, and
 * each `get` then compares names through its list (~14k instructions a notice under callgrind,
 * against ~3k here).
 */
class RawQuery implements QueryParams {
  constructor(
    private readonly q: string,
    /** Per pair: where its name starts, where it ends ('=' or the pair's end), where the pair ends. */
    private readonly bounds: number[],
  ) {}

  get(name: string): string | null {
    const { q, bounds } = this;
    const n = name.length;
    for (let i = 0; i < bounds.length; i += 3) {
      const start = bounds[i];
      const eq = bounds[i + 1];
      if (eq - start !== n) continue;
      let k = 0;
      while (k < n && q.charCodeAt(start + k) === name.charCodeAt(k)) k++;
      if (k < n) continue;
      const end = bounds[i + 2];
      return eq === end ? '' : q.slice(eq + 1, end);
    }
    return null;
  }
}

const AMP = 0x26;
const EQ = 0x3d;
const PERCENT = 0x25;
const PLUS = 0x2b;
const QUESTION = 0x3f;

/**
 * `query` (without the '?', as uWebSockets.js gives it) read as `new URLSearchParams(query)`
 * reads it: the same value for every name. Where anything could be decoded (a '%', a '+', a
 * character past ASCII, which URLSearchParams would make well-formed) or a leading '?' would be
 * dropped, it is URLSearchParams itself.
 */
export function parseQuery(query: string): QueryParams {
  const bounds: number[] = [];
  let start = 0;
  let eq = -1;
  const n = query.length;
  if (n > 0 && query.charCodeAt(0) === QUESTION) return new URLSearchParams(query);
  for (let i = 0; i <= n; i++) {
    const c = i < n ? query.charCodeAt(i) : AMP;
    if (c === AMP) {
      // An empty pair ('&&', a trailing '&') is no pair, as URLSearchParams skips it.
      if (i > start) bounds.push(start, eq < 0 ? i : eq, i);
      start = i + 1;
      eq = -1;
    } else if (c === EQ) {
      if (eq < 0) eq = i;
    } else if (c === PERCENT || c === PLUS || c >= 0x80) return new URLSearchParams(query);
  }
  return new RawQuery(query, bounds);
}
