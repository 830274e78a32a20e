/**
 * Evaluation metrics for click predictions: ROC AUC, log loss, expected calibration error and the
 * reliability bins behind it. Labels are 0/1.
 */

/** ROC AUC by rank statistic (Mann-Whitney U), ties given their average rank. */
export function auc(pred: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = pred.length;
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  idx.sort((a, b) => pred[a] - pred[b]);
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && pred[idx[j + 1]] === pred[idx[i]]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[idx[k]] > 0.5) {
        pos++;
        rankSum += avgRank;
      }
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/**
 * How many predictions are not probabilities strictly inside (0, 1) (NaN, infinite, 0, 1 or
 * beyond): the metrics below read NaN as null, and a value outside [0, 1] as a number, so they
 * cannot judge such a model; and serve refuses a model saturated to exactly 0 or 1 (its warm-up,
 * src/model/store.ts), so eval does not pass it either.
 */
export function notProbabilities(pred: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < pred.length; i++) if (!(pred[i] > 0 && pred[i] < 1)) n++;
  return n;
}

export function logloss(pred: ArrayLike<number>, labels: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < pred.length; i++) {
    const p = Math.min(Math.max(pred[i], 1e-7), 1 - 1e-7);
    s -= labels[i] > 0.5 ? Math.log(p) : Math.log(1 - p);
  }
  return s / pred.length;
}

export interface ReliabilityBin {
  meanPredicted: number;
  observedRate: number;
  count: number;
}

/**
 * Equal-mass bins: CTRs crowd near zero, so equal-width bins would put almost every row in the
 * first bin and hide miscalibration in the tail.
 */
export function reliability(pred: ArrayLike<number>, labels: ArrayLike<number>, bins = 20): ReliabilityBin[] {
  const n = pred.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => pred[a] - pred[b]);
  const out: ReliabilityBin[] = [];
  for (let b = 0; b < bins; b++) {
    const lo = Math.floor((b * n) / bins);
    const hi = Math.floor(((b + 1) * n) / bins);
    if (hi <= lo) continue;
    let sp = 0;
    let sl = 0;
    for (let k = lo; k < hi; k++) {
      sp += pred[idx[k]];
      sl += labels[idx[k]];
    }
    out.push({ meanPredicted: sp / (hi - lo), observedRate: sl / (hi - lo), count: hi - lo });
  }
  return out;
}

/** Expected calibration error over equal-mass bins: Σ (n_b/n)·|mean p − observed rate|. */
export function ece(pred: ArrayLike<number>, labels: ArrayLike<number>, bins = 20): number {
  const n = pred.length;
  return reliability(pred, labels, bins).reduce((s, b) => s + (b.count / n) * Math.abs(b.meanPredicted - b.observedRate), 0);
}

/**
 * Platt scaling: fits p' = σ(a·logit(p) + b) by Newton's method on held-out rows. Returns [a, b].
 * The targets are Platt's (1999) rather than the 0/1 labels: (N₊ + 1)/(N₊ + 2) for a click and
 * 1/(N₋ + 2) for none, so that a held-out set with a few clicks, which a logit separates, does not
 * drive the slope to hundreds (a model trained on 964 rows of an event log fitted a = −236 and
 * scored 0 or 1 on ordinary rows). On the shipped models' 600,000 held-out rows the targets move by
 * under 1e-4.
 */
export function fitPlatt(pred: ArrayLike<number>, labels: ArrayLike<number>, iterations = 50): [number, number] {
  const n = pred.length;
  const z = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const p = Math.min(Math.max(pred[i], 1e-7), 1 - 1e-7);
    z[i] = Math.log(p / (1 - p));
  }
  let positives = 0;
  for (let i = 0; i < n; i++) positives += labels[i] > 0.5 ? 1 : 0;
  const hit = (positives + 1) / (positives + 2);
  const miss = 1 / (n - positives + 2);
  const y = Float64Array.from({ length: n }, (_, i) => (labels[i] > 0.5 ? hit : miss));
  const loss = (a: number, b: number) => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      const t = a * z[i] + b;
      // log(1 + e^t) - y·t, computed without overflow.
      s += (t > 0 ? t + Math.log1p(Math.exp(-t)) : Math.log1p(Math.exp(t))) - y[i] * t;
    }
    return s;
  };
  let a = 1;
  let b = 0;
  let current = loss(a, b);
  for (let it = 0; it < iterations; it++) {
    let ga = 0, gb = 0, haa = 0, hab = 0, hbb = 0;
    for (let i = 0; i < n; i++) {
      const q = 1 / (1 + Math.exp(-(a * z[i] + b)));
      const r = q - y[i];
      const w = q * (1 - q);
      ga += r * z[i];
      gb += r;
      haa += w * z[i] * z[i];
      hab += w * z[i];
      hbb += w;
    }
    // A small ridge keeps the step finite when the held-out set is tiny or separable.
    haa += 1e-6;
    hbb += 1e-6;
    const det = haa * hbb - hab * hab;
    if (!(det > 0)) break;
    const da = (hbb * ga - hab * gb) / det;
    const db = (haa * gb - hab * ga) / det;
    // Newton overshoots from far away (confident predictions); halve the step until the loss drops.
    let step = 1;
    let next = loss(a - da, b - db);
    while (!(next < current) && step > 1e-6) {
      step /= 2;
      next = loss(a - step * da, b - step * db);
    }
    if (!(next < current)) break;
    a -= step * da;
    b -= step * db;
    const gain = current - next;
    current = next;
    if (gain < 1e-10 * n) break;
  }
  return [a, b];
}

/** Reliability diagram as a self-contained SVG. */
export function reliabilitySvg(series: { name: string; bins: ReliabilityBin[]; color: string }[], title: string): string {
  const size = 420;
  const pad = 50;
  const maxP = Math.max(0.01, ...series.flatMap((s) => s.bins.flatMap((b) => [b.meanPredicted, b.observedRate]))) * 1.05;
  const sx = (v: number) => pad + (v / maxP) * (size - 2 * pad);
  const sy = (v: number) => size - pad - (v / maxP) * (size - 2 * pad);
  const esc = (s: string) => s.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" font-family="sans-serif" font-size="11">`,
    `<rect width="${size}" height="${size}" fill="white"/>`,
    `<text x="${size / 2}" y="20" text-anchor="middle" font-size="13">${esc(title)}</text>`,
    `<line x1="${sx(0)}" y1="${sy(0)}" x2="${sx(maxP)}" y2="${sy(maxP)}" stroke="#999" stroke-dasharray="4 3"/>`,
    `<line x1="${pad}" y1="${size - pad}" x2="${size - pad}" y2="${size - pad}" stroke="black"/>`,
    `<line x1="${pad}" y1="${pad}" x2="${pad}" y2="${size - pad}" stroke="black"/>`,
    `<text x="${size / 2}" y="${size - 12}" text-anchor="middle">mean predicted CTR (equal-mass bins)</text>`,
    `<text x="14" y="${size / 2}" text-anchor="middle" transform="rotate(-90 14 ${size / 2})">observed CTR</text>`,
  ];
  for (let t = 0; t <= 4; t++) {
    const v = (maxP * t) / 4;
    parts.push(`<text x="${sx(v)}" y="${size - pad + 14}" text-anchor="middle">${v.toFixed(3)}</text>`);
    parts.push(`<text x="${pad - 4}" y="${sy(v) + 4}" text-anchor="end">${v.toFixed(3)}</text>`);
  }
  series.forEach((s, k) => {
    const pts = s.bins.map((b) => `${sx(b.meanPredicted).toFixed(1)},${sy(b.observedRate).toFixed(1)}`).join(' ');
    parts.push(`<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="1.5"/>`);
    for (const b of s.bins) parts.push(`<circle cx="${sx(b.meanPredicted).toFixed(1)}" cy="${sy(b.observedRate).toFixed(1)}" r="2.5" fill="${s.color}"/>`);
    parts.push(`<text x="${pad + 10}" y="${pad + 14 + 14 * k}" fill="${s.color}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
