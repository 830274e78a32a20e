import { toMicros, toUsd } from '../../src/ledger/budget.js';

/**
 * What the ledger records for one impression won at `cpm`: the price per impression in whole
 * micro-dollars (a bid of 11.7143 CPM settles 0.011714 USD, not 0.0117143).
 */
export const settledUsd = (cpm: number): number => toUsd(toMicros(cpm / 1000));
