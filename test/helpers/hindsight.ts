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
