import type { CtrModel } from '../types.js';

/**
 * A request's pCTRs, one per row, and the model that computed every one of them: a swap may land
 * while the request waits, so the model serving when it is logged need not be the one that scored.
 */
export interface Scored {
  pctrs: Float32Array;
  model: CtrModel;
}

/** Scoring through the micro-batcher. */
export interface Scorer {
  /** Resolves with the rows' pCTRs, all from one model, or null if the deadline passed (or the model call failed). */
  score(sparse: Int32Array, dense: Float32Array, rows: number, deadlineMs: number): Promise<Scored | null>;
  /** Expected wait before a new item would be scored, ms (admission control). */
  expectedDelayMs(): number;
}

export interface BatcherOptions {
  /** Most rows scored in one model call. */
  maxBatchRows: number;
  /**
   * How long the first queued item may wait for others. 0 (and anything under a millisecond)
   * means "until the end of the current event-loop turn": every request that arrived in the same
   * poll is scored together, without a timer. At 1000 µs or more a timer holds the batch open.
   */
  maxQueueDelayUs: number;
  sparseFields: number;
  denseDim: number;
  /** Current model; read at each batch so a hot swap takes effect between batches (and at a split request's join). */
  model: () => CtrModel | null;
  clock: () => number;
  onBatch?: (rows: number, queueDelayMs: number, computeMs: number) => void;
  onDrop?: (rows: number) => void;
  /**
   * A model call threw: called with the error once per burst (the first failure after a success),
   * so a broken model shows in the log without a line per batch.
   */
  onModelError?: (err: unknown) => void;
}

interface Item {
  sparse: Int32Array;
  dense: Float32Array;
  rows: number;
  deadlineMs: number;
  enqueuedMs: number;
  resolve: (v: Scored | null) => void;
}

/**
 * Dynamic micro-batcher (after Triton's): candidates from all concurrent bid requests are queued
 * and scored together in one model call, up to `maxBatchRows`. Each item carries the deadline of
 * its request; an item whose deadline has passed (or would pass before it is scored) resolves to
 * null and is never scored late.
 */
export function createBatcher(opts: BatcherOptions): Scorer & { pendingRows(): number } {
  const { maxBatchRows, sparseFields, denseDim, clock } = opts;
  let queue: Item[] = [];
  let queuedRows = 0;
  let scheduled = false;
  // Reused batch buffers: one allocation for the life of the batcher.
  const sparseBuf = new Int32Array(maxBatchRows * sparseFields);
  const denseBuf = new Float32Array(maxBatchRows * denseDim);
  // Exponentially weighted compute time per row and per call, for admission control.
  let msPerCall = 0.2;
  let msPerRow = 0.005;
  let lastCallAt = -Infinity;
  // Wall time from one flush to the next while a backlog remains. Between two batches the loop
  // also reads and prepares every request that arrived meanwhile, so under load a batch ahead
  // costs a whole loop turn, not just its model call; counting only the calls let admission
  // queue requests that then waited past their deadline.
  let msPerCycle = 0;
  let lastFlushAt = -Infinity;
  let backlogged = false;
  // How long the oldest item of recent batches waited from enqueue to its batch. Under a flood
  // the loop prepares hundreds of requests in one poll before the next flush can run, so even with
  // no backlog at the last flush a request queued early in that poll waits the rest of it; only
  // the waits themselves show that.
  let msWaited = 0;
  // Whether the last model call threw: the next failure is logged only after a success.
  let failing = false;

  const schedule =
    opts.maxQueueDelayUs >= 1000
      ? () => setTimeout(flush, Math.floor(opts.maxQueueDelayUs / 1000))
      : () => setImmediate(flush);

  function runBatch(model: CtrModel, items: Item[], rows: number): void {
    const t0 = clock();
    const sparse = sparseBuf.subarray(0, rows * sparseFields);
    const dense = denseBuf.subarray(0, rows * denseDim);
    if (model.predictAsync) {
      // A GPU model: the batch's arrays are read before predictAsync returns, so the next batch may
      // be gathered into the same buffers while this one's scores come back.
      model.predictAsync(sparse, dense, rows).then(
        (out) => settle(model, items, rows, t0, out),
        (err) => fail(items, rows, err),
      );
      return;
    }
    let out: Float32Array;
    try {
      out = model.predict(sparse, dense, rows);
    } catch (err) {
      fail(items, rows, err);
      return;
    }
    settle(model, items, rows, t0, out);
  }

  /** A failing model call drops its batch to no-bids; the caller counts it as a scoring error. */
  function fail(items: Item[], rows: number, err: unknown): void {
    for (const it of items) it.resolve(null);
    opts.onDrop?.(rows);
    if (!failing) opts.onModelError?.(err);
    failing = true;
  }

  function settle(model: CtrModel, items: Item[], rows: number, t0: number, out: Float32Array): void {
    failing = false;
    const computeMs = clock() - t0;
    lastCallAt = t0 + computeMs;
    msPerCall = 0.9 * msPerCall + 0.1 * computeMs;
    msPerRow = 0.9 * msPerRow + 0.1 * (computeMs / rows);
    let offset = 0;
    let oldest = Infinity;
    for (const it of items) {
      it.resolve({ pctrs: out.subarray(offset, offset + it.rows), model });
      offset += it.rows;
      if (it.enqueuedMs < oldest) oldest = it.enqueuedMs;
    }
    msWaited = 0.8 * msWaited + 0.2 * (t0 - oldest);
    opts.onBatch?.(rows, t0 - oldest, computeMs);
  }

  /**
   * Score one batch from the head of the queue. The rest waits for the next turn of the event
   * loop, so the requests of this batch are answered before the next batch computes (running all
   * batches back to back would hold every answer until the last one is done).
   */
  function flush(): void {
    scheduled = false;
    const t = clock();
    if (backlogged) msPerCycle = 0.8 * msPerCycle + 0.2 * (t - lastFlushAt);
    lastFlushAt = t;
    // More queued than one batch holds: earliest deadline first, so a request with a short tmax is
    // not held behind a turn's worth of long ones (the sort is stable: FIFO among equal deadlines).
    if (queuedRows > maxBatchRows) queue.sort((a, b) => a.deadlineMs - b.deadlineMs);
    const model = opts.model();
    let rows = 0;
    let taken = 0;
    const batch: Item[] = [];
    for (; taken < queue.length; taken++) {
      const it = queue[taken];
      if (!model || clock() + msPerCall > it.deadlineMs) {
        it.resolve(null);
        opts.onDrop?.(it.rows);
        queuedRows -= it.rows;
        continue;
      }
      if (rows + it.rows > maxBatchRows && rows > 0) break;
      sparseBuf.set(it.sparse.subarray(0, it.rows * sparseFields), rows * sparseFields);
      denseBuf.set(it.dense.subarray(0, it.rows * denseDim), rows * denseDim);
      batch.push(it);
      rows += it.rows;
      queuedRows -= it.rows;
    }
    queue = taken === queue.length ? [] : queue.slice(taken);
    if (rows > 0) runBatch(model!, batch, rows);
    backlogged = queue.length > 0;
    if (backlogged && !scheduled) ((scheduled = true), setImmediate(flush));
  }

  function enqueue(sparse: Int32Array, dense: Float32Array, rows: number, deadlineMs: number): Promise<Scored | null> {
    return new Promise((resolve) => {
      queue.push({ sparse, dense, rows, deadlineMs, enqueuedMs: clock(), resolve });
      queuedRows += rows;
      if (queuedRows >= maxBatchRows) {
        // A full batch goes at once, but still after this turn so the caller's work completes.
        if (!scheduled) ((scheduled = true), setImmediate(flush));
      } else if (!scheduled) {
        scheduled = true;
        schedule();
      }
    });
  }

  /**
   * More rows than one batch holds (hundreds of imps, or a catalog with many eligible creatives per
   * imp) are queued as chunks of at most `maxBatchRows`, scored in as many batches, and joined: every
   * row gets a score, or the whole request gets null when any chunk misses its deadline.
   *
   * A model swap can land between two of those batches, and the request's rows would then be
   * priced on two models and logged under one. The chunks scored by a model that no longer serves
   * are queued again, until every chunk has the serving model's scores (or the deadline passes).
   * Pinning the first chunk's model instead cannot work: a swap disposes of the old model at once
   * (src/live/live.ts), and a chunk held to it could not share a batch with anyone else's rows.
   * Re-scoring keeps every chunk an ordinary item, batched with other requests' rows; it costs
   * model calls only for the requests a swap lands in, and the join one comparison per chunk.
   */
  async function scoreSplit(sparse: Int32Array, dense: Float32Array, rows: number, deadlineMs: number): Promise<Scored | null> {
    const chunk = (r: number) => {
      const n = Math.min(maxBatchRows, rows - r);
      return enqueue(sparse.subarray(r * sparseFields, (r + n) * sparseFields), dense.subarray(r * denseDim, (r + n) * denseDim), n, deadlineMs);
    };
    const parts: (Scored | null | Promise<Scored | null>)[] = [];
    for (let r = 0; r < rows; r += maxBatchRows) parts.push(chunk(r));
    let scored = await Promise.all(parts);
    for (;;) {
      const model = opts.model();
      let stale = false;
      for (let i = 0; i < scored.length; i++) {
        const s = scored[i];
        if (!s) return null;
        if (s.model === model) parts[i] = s;
        else {
          // The caller keeps its rows until this answers, so the chunk can be read again.
          parts[i] = chunk(i * maxBatchRows);
          stale = true;
        }
      }
      if (!stale) break;
      scored = await Promise.all(parts);
    }
    const out = new Float32Array(rows);
    let offset = 0;
    for (const s of scored) {
      out.set(s!.pctrs, offset);
      offset += s!.pctrs.length;
    }
    return { pctrs: out, model: scored[0]!.model };
  }

  return {
    score(sparse, dense, rows, deadlineMs) {
      return rows > maxBatchRows ? scoreSplit(sparse, dense, rows, deadlineMs) : enqueue(sparse, dense, rows, deadlineMs);
    },
    expectedDelayMs() {
      // With admission shut nothing is scored, so nothing would correct an estimate inflated by one
      // slow call or one stalled turn (GC, a cold model, a descheduled process): after an idle
      // second the learnt waits start over and one request goes through to measure.
      if (queuedRows === 0 && clock() - lastCallAt > 1000) {
        msWaited = 0;
        msPerCycle = 0;
        return 0;
      }
      const batchesAhead = Math.floor(queuedRows / maxBatchRows) + 1;
      // The batch this request joins runs after the ones ahead, each a loop turn when backlogged.
      const waitAhead = (batchesAhead - 1) * (backlogged ? Math.max(msPerCycle, msPerCall) : msPerCall);
      const holdOpen = opts.maxQueueDelayUs >= 1000 ? opts.maxQueueDelayUs / 1000 : 0;
      // The waits learnt already include the time a batch is held open.
      return Math.max(waitAhead + holdOpen, msWaited) + msPerCall + queuedRows * msPerRow;
    },
    pendingRows() {
      return queuedRows;
    },
  };
}
