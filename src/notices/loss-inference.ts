// An exchange on `lossNotices: true` is named in a warning, and one on `auto` starts taking its
// silent bids as losses, once this many of its first-price bids have expired unheard with no loss
// notice from it: so many bids and not one loss heard means its losses go unsent, not that none
// were lost. (Second-price bids are no evidence: an exchange may send no loss notice there.)
const SILENT_BIDS_EVIDENCE = 1000;

/**
 * What a bid of this process that expired with no notice heard means, by its exchange's
 * `lossNotices` (the notice handler's `unheard`; src/sim/pacing.ts runs the same rule):
 * `false`, a loss at its bid; `true`, nothing (an exchange that sends no loss notice for 1,000
 * first-price bids is named in a warning); `auto`, nothing until that same evidence, then a loss,
 * until the exchange's first loss notice (then nothing again, for good: an exchange that sends
 * some loss notices leaves a silent bid's outcome unknown, a win whose notices were lost as
 * likely as a loss). Each switch is logged once.
 *
 * The bids that expired unheard while the evidence built up are not learnt after the switch: at
 * the switch they are up to the 1,000 bids' span old (an hour on a small exchange), and learnt
 * then they would land together, in the pacer's current minute and the shader's newest steps, a
 * burst of past prices where the outcomes it now learns come one bid at a time; nor would they be
 * losses for certain, the evidence being only that no loss notice came.
 *
 * Inferring needs each bid's notices back at the process that made it. Where a notice, in time,
 * of a bid this process did not make reaches it and it has no notice peers to tell, that may be
 * another process behind its notice URL without Redis (each with its own ledger), whose own bids'
 * notices then come here as much as this one's go there, a win heard there being a loss here; or
 * a bid of the run before a restart still in time (a longer noticeTtlMs then, a wall clock stepped
 * back). `auto` stays off (`foreignNotice`) until that bid's expiry plus this process's notice TTL,
 * by when its own bids made while such notices came have expired too: a shared URL keeps sending
 * them and keeps it off, a restart's leftovers stop. Each switch off and back on is logged. With
 * peers (a Redis fleet, `serve --workers`) a notice heard elsewhere reaches the bidding process
 * and marks its bid heard, as `false` has it.
 *
 * `clock` reads the time `foreignNotice`'s bound is against (the simulation hears no such notice).
 */
export function createLossInference(logger: { warn(obj: object, msg: string): void }, clock?: () => number) {
  // Exchanges a loss notice has come from, and the first-price bids expired unheard of the others.
  const sendsLosses = new Set<string>();
  const silentBids = new Map<string, number>();
  // Until when foreign notices keep `auto` off, and the exchanges it would infer on but for them
  // (their switch back on is logged).
  let foreignUntil = -Infinity;
  const heldOff = new Set<string>();
  const foreign = (): boolean => clock !== undefined && clock() < foreignUntil;
  const evidenced = (exchange: string): boolean => !sendsLosses.has(exchange) && (silentBids.get(exchange) ?? 0) >= SILENT_BIDS_EVIDENCE;
  const inferring = (exchange: string): boolean => evidenced(exchange) && !foreign();
  return {
    /** A loss notice from `exchange` (any: a duplicate or one not on price says it sends them too). */
    lossHeard(exchange: string, setting: boolean | 'auto' | undefined): void {
      if (setting === 'auto' && inferring(exchange)) {
        logger.warn({ exchange }, `exchange ${exchange} sent a loss notice: on lossNotices auto, bids that expire unheard are no longer taken as lost`);
      }
      sendsLosses.add(exchange);
    },
    /**
     * A notice, in time, for a bid this process does not remember, on a process with no notice
     * peers, once a bid of its own has expired: `auto` is off until `untilMs` (its expiry plus this
     * process's notice TTL), or a later such notice's.
     */
    foreignNotice(untilMs: number): void {
      const was = [...silentBids.keys()].filter(inferring);
      foreignUntil = Math.max(foreignUntil, untilMs);
      if (was.length === 0) return;
      for (const ex of was) heldOff.add(ex);
      logger.warn(
        { exchanges: was, untilMs: foreignUntil },
        `a notice for a bid this process did not make reached it in time, and it has no notice peers (Redis) to pass notices on (another process sharing the notice URL, or a bid of a run before a restart): on lossNotices auto, bids that expire unheard are not taken as lost on ${was.join(', ')} until ${new Date(foreignUntil).toISOString()} or a later such notice's expiry and TTL (a win heard by another process would be a loss here)`,
      );
    },
    /** Whether a bid of `exchange` that expired unheard is taken as lost at its bid. */
    unheard(exchange: string, setting: boolean | 'auto', firstPrice: boolean): boolean {
      if (setting === false) return true;
      if (sendsLosses.has(exchange)) return false;
      if (setting === 'auto' && inferring(exchange)) {
        if (heldOff.delete(exchange)) {
          logger.warn({ exchange }, `notices for bids this process did not make have stopped (the last one's expiry and this process's notice TTL passed at ${new Date(foreignUntil).toISOString()}): on lossNotices auto, bids of ${exchange} that expire unheard are taken as lost again, until a loss notice comes`);
        }
        return true;
      }
      if (!firstPrice) return false;
      const n = (silentBids.get(exchange) ?? 0) + 1;
      silentBids.set(exchange, n);
      if (n !== SILENT_BIDS_EVIDENCE) return false;
      if (setting === true) {
        logger.warn(
          { exchange, bids: n },
          `exchange ${exchange} has sent no loss notice for ${n} first-price bids: if it never sends them, set lossNotices: false in exchanges.yaml (without losses the shader learns from wins alone and shades bids down until they stop winning)`,
        );
      } else if (foreign()) {
        heldOff.add(exchange);
        logger.warn(
          { exchange, bids: n, untilMs: foreignUntil },
          `exchange ${exchange} has sent no loss notice for ${n} first-price bids, but a notice for a bid this process did not make reached it in time, and it has no notice peers (Redis) to pass notices on (another process sharing the notice URL, or a bid of a run before a restart): lossNotices auto takes no silent bid as lost here while such notices keep coming, until ${new Date(foreignUntil).toISOString()} so far (if processes share the notice URL, route each notice to the process that bid, or give each its own publicUrl, and set lossNotices: false)`,
        );
      } else {
        logger.warn(
          { exchange, bids: n },
          `exchange ${exchange} has sent no loss notice for ${n} first-price bids: on lossNotices auto, its bids that expire unheard are taken as lost from now on, until a loss notice comes (set lossNotices: false in exchanges.yaml if it never sends them, true if it does)`,
        );
      }
      return false;
    },
  };
}
