/**
 * The largest step of the wall clock eased in; a larger one is taken at once. NTP steps a synced
 * host's clock by well under a second (ntpd from 128 ms, chrony by its makestep threshold), and a
 * live migration pauses a VM for seconds: a minute covers those with room to spare. A larger step
 * means the wall clock was wrong by more (a VM resumed after a long pause, a clock set by hand or
 * fixed by NTP after drifting) and is right now: eased in at 5 %, an 8 h step kept the UTC day,
 * the flights' days and the dayparting hours on the old time for 6.7 days (a flight served
 * reservations 4 h after its end; a fleet bidder 2 h behind spent 1.8 times a day's budget in the
 * first minute of a real day). Taken at once, it would end early the holds it passes (a forward
 * step of 11 minutes freed 10-minute holds: a $1/day campaign spent $2) and keep them the step
 * longer back: `onStep` tells the in-process ledger, which moves its holds by the step (bidder.ts;
 * the Redis ledger's run on Redis's clock). The notices' signed expiries stay on the old time: a
 * forward step refuses the wins still on their way (notices come seconds after the bid), a few
 * seconds' spend, once.
 */
export const MAX_EASED_STEP_MS = 60_000;

/**
 * The bidder's epoch-ms clock: the wall clock, except that a small step of it (up to
 * `maxEasedMs`, MAX_EASED_STEP_MS by default) is absorbed gradually instead of at once.
 *
 * Everything that times money reads this clock: reservation expiry, the notices' signed expiry,
 * the ledger's memory of finished bids. On the raw wall clock a forward step ends at once every
 * hold it passes, and the budget they held is granted again while their wins are still on the way
 * (the journal audit measured twice the budget spent with a 10-minute step and 10-minute holds);
 * the same step refuses notices that are still valid, so billed spend goes unrecorded. Here the
 * clock advances with the monotonic clock and closes a distance to the wall clock of up to
 * `maxEasedMs` at no more than `maxRate` of the time elapsed: an interval this clock measures is
 * within (1 ± maxRate) of the real one, so a hold or a notice window of T lasts at least
 * T / (1 + maxRate), and the clock does not go back. The price: after such a step the UTC day (and
 * the hour of the pacing slots) turns up to the step late or early, less every second, caught up
 * after step / maxRate (a 1-minute step: 20 minutes at 5 %). A step beyond `maxEasedMs` is taken
 * at once, back as well as forward (see MAX_EASED_STEP_MS), with one warning to `logger` and a
 * call of `onStep` (signed ms) each time, before the new time is returned: what times intervals on
 * this clock moves them by it there (MemoryLedger.clockStepped).
 */
export function createSteadyClock(
  opts: {
    wall?: () => number;
    mono?: () => number;
    maxRate?: number;
    maxEasedMs?: number;
    logger?: { warn(obj: object, msg: string): void };
    onStep?: (stepMs: number) => void;
  } = {},
): () => number {
  const wall = opts.wall ?? Date.now;
  const mono = opts.mono ?? performance.now.bind(performance);
  const rate = opts.maxRate ?? 0.05;
  const maxEased = opts.maxEasedMs ?? MAX_EASED_STEP_MS;
  if (!(rate > 0 && rate < 1)) throw new Error('maxRate must be in (0, 1)');
  if (!(maxEased >= 0)) throw new Error('maxEasedMs must be 0 or more');
  let lastMono = mono();
  let t = wall();
  return () => {
    const m = mono();
    const dt = m - lastMono;
    if (dt > 0) {
      lastMono = m;
      const w = wall();
      const gap = w - (t + dt);
      if (gap > maxEased || gap < -maxEased) {
        const stepMs = Math.round(gap);
        opts.logger?.warn(
          { stepMs, from: new Date(t + dt).toISOString(), to: new Date(w).toISOString() },
          `the wall clock stepped by more than ${maxEased / 1000} s: the bidder's clock takes the step at once (UTC day, flights and dayparting by the new time; the budget day does not go back); holds keep their time, notice windows the step passes end early; check the host's time sync (docs/money.md#clock-steps)`,
        );
        opts.onStep?.(stepMs);
        t = w;
      } else {
        const room = rate * dt;
        t += dt + (gap > room ? room : gap < -room ? -room : gap);
      }
    }
    // Whole ms, as Date.now: ids, tokens and journal records print it.
    return Math.floor(t);
  };
}
