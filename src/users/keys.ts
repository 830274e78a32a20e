/**
 * A request's user keys as one string (`Users.key`, src/users/users.ts): one keyed hash per kind
 * of id the request has, the most lasting first, each USER_KEY_CHARS long, written one after the
 * other. It travels as one value through eligibility, the issued bid and the signed notice URL
 * (`uk`); a key of the versions before, which had one, is the same string of one key. Without a
 * separator the string stays in the `uk` form those versions accept (base64url, at most 64
 * characters: four keys): a notice of a bid this version made that reaches a process of the
 * version before, in a rolling deploy, verifies and settles there, its cap recorded under the
 * joined string (a key nobody counts) rather than refused as malformed with the money unrecorded.
 */

/** One key: 12 bytes of keyed MAC, base64url. */
export const USER_KEY_CHARS = 16;

/** Whether `userKeys` holds more than one key. */
function several(userKeys: string): boolean {
  return userKeys.length > USER_KEY_CHARS && userKeys.length % USER_KEY_CHARS === 0;
}

/** Each key of `userKeys`. */
export function userKeysOf(userKeys: string): string[] {
  if (!several(userKeys)) return [userKeys];
  const out: string[] = [];
  for (let i = 0; i < userKeys.length; i += USER_KEY_CHARS) out.push(userKeys.slice(i, i + USER_KEY_CHARS));
  return out;
}

/**
 * The first key of `userKeys`: the most lasting id's, as the single key was before, which the
 * profile, the features and the event log go by (a profile merged across a person's ids would
 * change what the features mean: a retrain, not a cap).
 */
export function primaryUserKey(userKeys: string): string {
  return several(userKeys) ? userKeys.slice(0, USER_KEY_CHARS) : userKeys;
}
