/**
 * The model's input: labelled feature rows. The simulator produces one (src/sim/dataset.ts), and so
 * does the bidder's event log (eventlog-data.ts); training and evaluation read only this.
 */
export interface Dataset {
  rows: number;
  sparse: Int32Array;
  dense: Float32Array;
  labels: Float32Array;
  /** The hidden true click probability of each row (the oracle's prediction). */
  truth: Float32Array;
}
