/**
 * The auction-log format of the iPinYou RTB benchmark as used by Zhang et al. (2014) and Cai et
 * al. (2017): whitespace-separated lines `click marketPrice pctr`; a line holding a single number
 * starts a new episode; an optional first line is a header, `<number> <T>` (the files of Cai et
 * al.'s repository: T auctions per episode) or `dim <n>`. Prices are CPM in the log's own unit
 * (iPinYou: RMB fen), so one impression costs marketPrice / 1000.
 *
 * Where the header gives T, every episode must hold T auctions: a log cut short (`head -n`, a
 * copy interrupted) or with a torn last line would otherwise replay a last episode of fewer
 * auctions, or none, on a whole episode's budget. `dim <n>` (what `simulate --ipinyou` writes,
 * its last episode the rest of the day) and no header leave the lengths free.
 */
import type { PacingDay } from '../sim/pacing-day.js';
import { createRng } from '../random/random.js';

export interface Episode {
  click: Uint8Array;
  /** The market price: what a second-price win pays, the competing bid a first-price bid must reach. */
  price: Float64Array;
  pctr: Float64Array;
  /** 1 where the auction is first price (a win pays the bid); absent: every auction is second price (the iPinYou logs). */
  firstPrice?: Uint8Array;
}

export interface AuctionLog {
  episodes: Episode[];
  /** T, the auctions of every episode, where the header gives it. */
  auctionsPerEpisode?: number;
  /** The last episode, where it holds fewer than T auctions (replayed with the same budget as the others). */
  shortLast?: { where: string; auctions: number };
}

/** What `<camp>.train-info.txt` says of the campaign's training days. */
export interface TrainInfo {
  /** Mean market price x 1000 (so cpm / 1000 is the average price of one auction, in the log's unit). */
  cpm: number;
  avgCtr: number;
  /** priceCounts[p]: auctions of the training days whose market price was p. */
  priceCounts: number[];
}

/** Parses `CPC:`, `CPM:`, `avg ctr:` and `counter:` (underscore-separated counts per price) lines. */
export function parseTrainInfo(text: string): TrainInfo {
  const fields = new Map<string, string>();
  text.split('\n').forEach((line) => {
    const m = /^\s*([A-Za-z ]+?)\s*:\s*(\S+)\s*$/.exec(line);
    if (m) fields.set(m[1].toLowerCase(), m[2]);
  });
  const problems: string[] = [];
  const num = (k: string): number => {
    const v = Number(fields.get(k));
    if (!(v > 0)) problems.push(`'${k}:' missing or not a positive number`);
    return v;
  };
  const cpm = num('cpm');
  const avgCtr = num('avg ctr');
  const counts = (fields.get('counter') ?? '').split('_').map(Number);
  if (counts.length < 2 || counts.some((c) => !(c >= 0)) || !counts.some((c) => c > 0)) problems.push("'counter:' missing or not underscore-separated counts");
  if (problems.length > 0) throw new Error(problems.join('; '));
  return { cpm, avgCtr, priceCounts: counts };
}

/**
 * A line (or field) of the log as an error quotes it: at most 80 characters, JSON-quoted so control
 * bytes show escaped, "…" where cut. A one-line file of 960 KB, or a gzipped file read as text, was
 * echoed whole.
 */
function quoted(s: string): string {
  return `${JSON.stringify(s.slice(0, 80))}${s.length > 80 ? '…' : ''}`;
}

export function parseIpinyou(text: string): AuctionLog {
  const episodes: Episode[] = [];
  let click: number[] = [];
  let price: number[] = [];
  let pctr: number[] = [];
  let open = false;
  let T: number | undefined;
  let headerLine = 0;
  // The episode being read: its number and the line of its marker (0: auctions before any marker).
  let name = '1';
  let from = 0;
  // An episode shorter than the header's T, which only the last may be: the RLB repository's own
  // make_validation.py writes the auctions left over as a short last episode (2997.test.txt ends
  // with 63 of 1000). A log cut in its last episode reads the same; one cut anywhere else does not.
  let short: { where: string; auctions: number } | null = null;
  const wrongLength = (where: string, n: number) =>
    new Error(`${where} has ${n} auction${n === 1 ? '' : 's'}, the header (line ${headerLine}) gives ${T} per episode: a log cut short or corrupt`);
  const close = () => {
    if (open) {
      const where = `episode ${name}${from > 0 ? ` (line ${from})` : ''}`;
      if (click.length === 0) throw new Error(`${where} has no auctions: a torn or cut log`);
      if (short !== null) throw wrongLength(short.where, short.auctions);
      if (T !== undefined && click.length > T) throw wrongLength(where, click.length);
      if (T !== undefined && click.length < T) short = { where, auctions: click.length };
      episodes.push({ click: Uint8Array.from(click), price: Float64Array.from(price), pctr: Float64Array.from(pctr) });
    }
    click = [];
    price = [];
    pctr = [];
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const f = lines[i].trim().split(/\s+/).filter((x) => x !== '');
    if (f.length === 0) continue;
    if (episodes.length === 0 && !open && f.length === 2 && (f[0] === 'dim' || f.every((x) => Number.isFinite(Number(x))))) {
      if (f[0] !== 'dim') {
        T = Number(f[1]);
        if (!(Number.isInteger(T) && T > 0)) throw new Error(`line ${i + 1}: the header's T (auctions per episode) must be a positive integer, got ${quoted(f[1])}`);
        headerLine = i + 1;
      }
      continue;
    }
    if (f.length === 1) {
      if (!Number.isFinite(Number(f[0]))) throw new Error(`line ${i + 1}: expected an episode number, got ${quoted(f[0])}`);
      close();
      open = true;
      name = f[0];
      from = i + 1;
      continue;
    }
    const [c, p, q] = f.map(Number);
    if (f.length !== 3 || !(c === 0 || c === 1) || !(Number.isFinite(p) && p >= 0) || !(q >= 0 && q <= 1)) {
      throw new Error(`line ${i + 1}: expected 'click marketPrice pctr' (click 0/1, a finite price >= 0, 0 <= pctr <= 1), got ${quoted(lines[i].trim())}`);
    }
    // Auctions before any episode line form the first episode.
    open = true;
    click.push(c);
    price.push(p);
    pctr.push(q);
  }
  close();
  if (episodes.length === 0) throw new Error('no auctions in the log');
  if (T === undefined) return { episodes };
  return short === null ? { episodes, auctionsPerEpisode: T } : { episodes, auctionsPerEpisode: T, shortLast: short };
}

export interface WriteOptions {
  episodes: number;
  /** Index of the campaign whose auctions are written (default 0). */
  campaign?: number;
  /** Noise of the written pCTR around the truth, on the logit scale (default 0.3): a realistic model, not the oracle. */
  pctrNoise?: number;
  seed?: number;
}

/**
 * One campaign's auctions of a simulated day as an iPinYou log: the click actually drawn, the
 * price that would have won (the higher of competing bid and floor, in CPM cents) and a noisy pCTR.
 */
export function writeIpinyou(day: PacingDay, o: WriteOptions): string {
  const ci = o.campaign ?? 0;
  const noise = o.pctrNoise ?? 0.3;
  const rng = createRng((o.seed ?? day.seed) ^ 0x1b1b1b);
  const rows: string[] = [];
  for (const a of day.auctions) {
    const cand = a.cands.find((c) => c.campaign === ci);
    if (cand === undefined) continue;
    const z = Math.log(cand.trueCtr / (1 - cand.trueCtr)) + noise * rng.normal();
    const price = Math.round(100 * Math.max(a.competingCpm, cand.floorUsd));
    rows.push(`${a.clickU < cand.trueCtr ? 1 : 0} ${price} ${(1 / (1 + Math.exp(-z))).toFixed(6)}`);
  }
  const per = Math.ceil(rows.length / o.episodes);
  const out = ['dim 1'];
  for (let e = 0; e < o.episodes; e++) {
    const chunk = rows.slice(e * per, (e + 1) * per);
    if (chunk.length === 0) break;
    out.push(String(e + 1), ...chunk);
  }
  return `${out.join('\n')}\n`;
}
