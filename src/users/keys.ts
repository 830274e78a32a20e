/**
 * A request's user keys as one string (`Users.key`, src/users/users.ts): one keyed hash per kind
 * of id the request has, the most lasting first, joined by USER_KEY_SEPARATOR. It travels as one
 * value through eligibility, the issued bid and the signed notice URL (`uk`); a key of the versions
 * before, which had one, is the same string of one key.
 */

/** Between the keys: not a character of a key (base64url), nor one a URL or XML escapes. */
export const USER_KEY_SEPARATOR = '.';

/** Each key of `userKeys`. */
export function userKeysOf(userKeys: string): string[] {
  return userKeys.indexOf(USER_KEY_SEPARATOR) < 0 ? [userKeys] : userKeys.split(USER_KEY_SEPARATOR);
}

/**
 * The first key of `userKeys`: the most lasting id's, as the single key was before, which the
 * profile, the features and the event log go by (a profile merged across a person's ids would
 * change what the features mean: a retrain, not a cap).
 */
export function primaryUserKey(userKeys: string): string {
  const i = userKeys.indexOf(USER_KEY_SEPARATOR);
  return i < 0 ? userKeys : userKeys.slice(0, i);
}
