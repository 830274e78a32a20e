import { describe, expect, it } from 'vitest';
import { createLagClock } from '../src/server/arrival.js';

/** A fake loop: the lag timer fires when the loop is free, late by however long it was held. */
function loop() {
  let now = 0;
  let idle = 0;
  let tick: (() => void) | null = null;
  const clock = createLagClock(
    { now: () => now, intervalMs: 5, idleMs: () => idle },
    ((fn: () => void) => ((tick = fn), { unref() {} })) as never,
    (() => (tick = null)) as never,
  );
  return {
    arrival: () => clock.arrival(),
    /** The loop runs for `ms` without reaching its timers, then the timer fires if due. */
    hold: (ms: number) => {
      now += ms;
    },
    fire: () => tick?.(),
    /** The loop blocks waiting for I/O. */
    wait: (ms: number) => ((now += ms), (idle += ms)),
    stop: () => clock.stop(),
    ticking: () => tick !== null,
  };
}

describe('arrival of a request read now (event-loop lag)', () => {
  it('on a free loop: now', () => {
    const l = loop();
    l.hold(5);
    l.fire();
    expect(l.arrival()).toBe(5);
  });

  it('after the loop was held: now less the hold, until the next tick finds it free again', () => {
    const l = loop();
    l.hold(45); // a 40 ms batch past the 5 ms interval
    l.fire();
    expect(l.arrival()).toBe(5); // bytes read now may have waited since the loop was held
    l.hold(5);
    l.fire(); // on time again
    expect(l.arrival()).toBe(50);
  });

  it('while the tick is overdue (a long poll reading a flood): the wait so far', () => {
    const l = loop();
    l.hold(5);
    l.fire();
    l.hold(25); // still reading, the tick due at 10 has not run
    expect(l.arrival()).toBe(5);
  });

  it('a poll after a hold: the hold and the poll so far both count', () => {
    const l = loop();
    l.hold(45); // a 40 ms batch past the 5 ms interval
    l.fire();
    l.hold(30); // then a 30 ms poll preparing what queued meanwhile
    expect(l.arrival()).toBe(5); // read at 75: it may have waited since the batch began
  });

  it('stops its timer', () => {
    const l = loop();
    expect(l.ticking()).toBe(true);
    l.stop();
    expect(l.ticking()).toBe(false);
  });

  it('a request read after the loop waited for I/O arrived during the wait: the earlier hold is not its own', () => {
    const l = loop();
    l.hold(105); // start-up work holds the loop 100 ms past the interval
    l.fire();
    expect(l.arrival()).toBe(5);
    l.wait(2); // then it blocks until the next request comes
    expect(l.arrival()).toBe(107);
  });
});
