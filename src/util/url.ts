/**
 * A URL as a message may show it: its `user:password@` part dropped (a Redis URL's credentials),
 * since start problems, errors and the ledger's move record go to stderr, logs and files. Greedy
 * to the authority's last `@`, so a password with an unencoded `@` is dropped whole.
 */
export function withoutCredentials(url: string): string {
  return url.replace(/^([^:/?#\s]*:)?\/\/[^/?#\s]*@/, (_, scheme: string | undefined) => `${scheme ?? ''}//`);
}
