/**
 * One shared copy of equal values that outlive their request. An issued bid keeps its shading
 * segment and its page categories until its notices expire (minutes): built per request, the
 * segment is a tree of a dozen concatenated strings and each category a fresh lower-cased copy,
 * ~400 bytes a bid that every young-generation GC copies, promotes and the old generation then
 * marks. Interned, every bid that names the same value shares one.
 *
 * Bounded: once `max` keys are held the table starts over, so a stream of values never seen twice
 * costs a lookup each and no memory (and a value dropped that way is only stored again).
 */
export function createInterner<V>(max: number): (key: string, make: (key: string) => V) => V {
  const table = new Map<string, V>();
  return (key, make) => {
    const known = table.get(key);
    if (known !== undefined) return known;
    if (table.size >= max) table.clear();
    const value = make(key);
    table.set(key, value);
    return value;
  };
}

/** `createInterner` for strings that are their own value. */
export function createStringInterner(max: number): (s: string) => string {
  const intern = createInterner<string>(max);
  const same = (s: string) => s;
  return (s) => intern(s, same);
}
