/**
 * Min-heap of pending items by timestamp, for the simulators' notices and event records. Ties
 * keep insertion order, so a seed replays exactly.
 */
export class TimeQueue<T extends { ts: number }> {
  private heap: Array<{ item: T; seq: number }> = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  peekTs(): number {
    return this.heap.length > 0 ? this.heap[0].item.ts : Infinity;
  }

  push(item: T): void {
    const h = this.heap;
    h.push({ item, seq: this.seq++ });
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  pop(): T {
    const h = this.heap;
    const top = h[0].item;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(l, m)) m = l;
        if (r < h.length && this.less(r, m)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }

  private less(a: number, b: number): boolean {
    const x = this.heap[a];
    const y = this.heap[b];
    return x.item.ts < y.item.ts || (x.item.ts === y.item.ts && x.seq < y.seq);
  }
}
