/** The privacy caches' bound (src/eligibility/privacy.ts): a few MB of what a request sent. */
const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;

/**
 * One shared copy of equal values that outlive their request. An issued bid keeps its shading
 * segment and its page categories until its notices expire (minutes): built per request, the
 * segment is a tree of a dozen concatenated strings and each category a fresh lower-cased copy,
 * ~400 bytes a bid that every young-generation GC copies, promotes and the old generation then
 * marks. Interned, every bid that names the same value shares one.
 *
 * Bounded: once `max` keys are held, or their estimated bytes would pass `maxBytes` (a count alone
 * let a few thousand long keys a request sent hold gigabytes), the table starts over, so a stream
 * of values never seen twice costs a lookup each and no memory (and a value dropped that way is
 * only stored again). A key that alone passes `maxBytes` is made and not kept.
 */
export function createInterner<V>(max: number, maxBytes = DEFAULT_MAX_BYTES): (key: string, make: (key: string) => V) => V {
  const table = new Map<string, V>();
  let bytes = 0;
  return (key, make) => {
    const known = table.get(key);
    if (known !== undefined) return known;
    const value = make(key);
    const size = entryBytes(key);
    if (size > maxBytes) return value;
    if (table.size >= max || bytes + size > maxBytes) {
      table.clear();
      bytes = 0;
    }
    table.set(key, value);
    bytes += size;
    return value;
  };
}

/**
 * An entry's bytes, estimated: the key in UTF-16 at worst, a value made from it of about its size
 * (the string itself, or a category's lower-cased copy and its parent), and the table's overhead.
 */
function entryBytes(key: string): number {
  return 4 * key.length + 64;
}

/** `createInterner` for strings that are their own value. */
export function createStringInterner(max: number, maxBytes = DEFAULT_MAX_BYTES): (s: string) => string {
  const intern = createInterner<string>(max, maxBytes);
  const same = (s: string) => s;
  return (s) => intern(s, same);
}
