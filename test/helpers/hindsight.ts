/** One second-price auction of a synthetic day: when, the campaign's value and the price to beat, CPM USD. */
export interface Auction {
  t: number;
  value: number;
  price: number;
}

/** The value hindsight buys with `budgetUsd`, knowing every price (the LP's bound: best value per cost first, the last one in part). */
export function hindsightValue(a: readonly Auction[], budgetUsd: number): number {
  const xs = a.filter((x) => x.value >= x.price).sort((x, y) => y.value / y.price - x.value / x.price);
  let spent = 0;
  let value = 0;
  for (const x of xs) {
    const c = x.price / 1000;
    if (spent + c > budgetUsd) return value + ((x.value / 1000) * (budgetUsd - spent)) / c;
    spent += c;
    value += x.value / 1000;
  }
  return value;
}

/** The pacer calls a day of second-price auctions makes of campaign `c` (creative `cr`). */
export interface DayPacer {
  multiplier(id: string, now: number, o: { valueCpmUsd: number; firstPrice: boolean }): number;
  onBid(id: string, creativeId: string, bidCpmUsd: number, now: number): void;
  onWin(id: string, creativeId: string, priceCpmUsd: number, now: number): void;
  onLoss(id: string, creativeId: string, bidCpmUsd: number, minToWinCpmUsd: number | undefined, now: number): void;
}

/**
 * Plays `auctions` through `pacer` as campaign `c`, setting the clock (`setNow`) to each, never
 * past `budgetUsd`; a loss tells the price to beat where `lossPrices`. Spend and value bought, USD.
 */
export function playDay(pacer: DayPacer, auctions: readonly Auction[], budgetUsd: number, setNow: (t: number) => void, lossPrices: boolean): { spent: number; value: number } {
  let spent = 0;
  let value = 0;
  for (const x of auctions) {
    setNow(x.t);
    const bid = x.value * pacer.multiplier('c', x.t, { valueCpmUsd: x.value, firstPrice: false });
    if (!(bid > 0) || spent + bid / 1000 > budgetUsd) continue;
    pacer.onBid('c', 'cr', bid, x.t);
    if (bid >= x.price) {
      spent += x.price / 1000;
      value += x.value / 1000;
      pacer.onWin('c', 'cr', x.price, x.t);
    } else pacer.onLoss('c', 'cr', bid, lossPrices ? x.price : undefined, x.t);
  }
  return { spent, value };
}
