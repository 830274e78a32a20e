/**
 * The pacers the value pacer is compared with, on the same auctions (simulator and replay):
 * a PID-steered multiplier on the spend error and dual mirror descent on λ.
 */

/**
 * PID control of a bid multiplier on the spend error (Zhang et al. 2016, "Feedback control of
 * real-time display advertising"): in log space, so one gain works for any scale of bids.
 * `errFrac` is (target spend − spend) / budget, sampled at a fixed period. The gains (30, 0.3, 10)
 * suit the simulator's day of ~1,400 steps; `gain` scales them for other loops (the replay's
 * episodes have 20 steps and a budget of a few dozen auctions, where one win moves the error by
 * several percent).
 */
export class PidMultiplier {
  private integral = 0;
  private prevErr = 0;
  multiplier = 0.5;
  constructor(private readonly base = 0.5, private readonly max = 4, private readonly gain = 1) {
    this.multiplier = base;
  }
  update(errFrac: number): void {
    this.integral += errFrac;
    const u = this.gain * (30 * errFrac + 0.3 * this.integral + 10 * (errFrac - this.prevErr));
    this.prevErr = errFrac;
    this.multiplier = Math.min(this.max, Math.max(0.01, this.base * Math.exp(u)));
  }
}

/**
 * Dual mirror descent on the budget constraint (Balseiro, Lu & Mirrokni 2020) with the entropic
 * mirror map: after each opportunity, log λ moves by η (spent − ρ) / ρ, where ρ is the budget
 * left per opportunity left. Bids are value / λ. λ carries over from one day to the next.
 */
export class DualDescent {
  lambda: number;
  constructor(private readonly eta: number, initialLambda = 1, private readonly minLambda = 0) {
    this.lambda = initialLambda;
  }
  update(spent: number, budgetLeft: number, oppsLeft: number): void {
    if (!(budgetLeft > 0) || !(oppsLeft > 0)) return;
    const rho = budgetLeft / oppsLeft;
    this.lambda = Math.max(this.minLambda, this.lambda * Math.exp((this.eta * (spent - rho)) / rho));
  }
}
