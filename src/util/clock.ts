/**
 * The bidder's epoch-ms clock: the wall clock, except that a step of it (an NTP step, a VM
 * resumed, an operator's `date -s`) is absorbed gradually instead of at once.
 *
 * Everything that times money reads this clock: reservation expiry, the notices' signed expiry,
 * the ledger's memory of finished bids. On the raw wall clock a forward step of ten minutes ends
 * every hold at once, and the budget they held is granted again while their wins are still on the
 * way (the journal audit measured twice the budget spent); the same step refuses notices that are
 * still valid, so billed spend goes unrecorded. Here the clock advances with the monotonic clock
 * and closes its distance to the wall clock at no more than `maxRate` of the time elapsed: an
 * interval this clock measures is within (1 ± maxRate) of the real one, so a hold or a notice
 * window of T lasts at least T / (1 + maxRate), and the clock never goes back. The price: after a
 * step the UTC day (and the hour of the pacing slots) turns up to the step late or early, less
 * every second, caught up after step / maxRate (a 10-minute step: 200 minutes at 5 %).
 */
export function createSteadyClock(opts: { wall?: () => number; mono?: () => number; maxRate?: number } = {}): () => number {
  const wall = opts.wall ?? Date.now;
  const mono = opts.mono ?? performance.now.bind(performance);
  const rate = opts.maxRate ?? 0.05;
  if (!(rate > 0 && rate < 1)) throw new Error('maxRate must be in (0, 1)');
  let lastMono = mono();
  let t = wall();
  return () => {
    const m = mono();
    const dt = m - lastMono;
    if (dt > 0) {
      lastMono = m;
      const gap = wall() - (t + dt);
      const room = rate * dt;
      t += dt + (gap > room ? room : gap < -room ? -room : gap);
    }
    // Whole ms, as Date.now: ids, tokens and journal records print it.
    return Math.floor(t);
  };
}
