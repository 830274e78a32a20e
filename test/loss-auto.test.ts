import { describe, expect, it } from 'vitest';
import { loadPolicies, type ExchangeSettings } from '../src/config/policies.js';
import { createIssuedBids } from '../src/notices/issued.js';
import { createNoticeHandler, type NoticeDeps, type NoticePeers } from '../src/notices/notices.js';
import { createSigner, noticeUrl, noticeUrls, type NoticeClaims } from '../src/notices/sign.js';

const SECRET = 'loss-auto-secret-0123456789abcdef';
const TTL_MS = 60_000;

/** `o`, whose other methods do nothing (metrics, ledger, event log). */
const stub = <T extends object>(o: T): T => new Proxy(o, { get: (t, k) => (k in t ? t[k as keyof T] : () => {}) });

/** The notice handler over an issued-bid ring, wired as the bidder wires them (test/loss-inference.test.ts). */
function wired(o: { lossNotices: ExchangeSettings['lossNotices']; peers?: NoticePeers }) {
  let now = 0;
  const clock = () => now;
  const warnings: string[] = [];
  const losses: unknown[][] = [];
  const observed: unknown[][] = [];
  const exchange = { name: 'ex', lossNotices: o.lossNotices } as ExchangeSettings;
  const signer = createSigner(SECRET);
  const issued = createIssuedBids(100_000, TTL_MS, clock, (...bid) => handle.unheard(...bid));
  const handle = createNoticeHandler({
    signer,
    secret: SECRET,
    metrics: stub({}),
    eventLog: stub({}),
    ledger: stub({ release: async () => true, settle: async () => 'unknown' }),
    pacer: stub({ onLoss: (...a: unknown[]) => void losses.push(a) }),
    shader: stub({ observe: (...a: unknown[]) => void observed.push(a) }),
    issued,
    clock,
    now: clock,
    ratesPerUsd: () => new Map([['USD', 1]]),
    exchange: (name: string) => (name === 'ex' ? exchange : undefined),
    peers: o.peers,
    // As the bidder opens its ledger: retention 2 x noticeTtlMs.
    ledgerRetentionMs: 2 * TTL_MS,
    logger: { warn: (_: unknown, msg: string) => warnings.push(msg) },
  } as unknown as NoticeDeps);
  let seq = 0;
  /** A notice of `bidId`, signed to expire `expiresInMs` from now (this process's TTL unless said). */
  const notice = async (kind: 'loss' | 'win', bidId: string, expiresInMs = TTL_MS): Promise<number> => {
    const claims: NoticeClaims = { bidId, campaignId: 'c', creativeId: 'cr', bidPrice: 1, cur: 'USD', rate: 1, exchange: 'ex', expiresAtMs: now + expiresInMs };
    const url = noticeUrl(noticeUrls('http://x', claims, signer.sign(claims, false), { expandPrice: false, nurl: true }), kind);
    const q = url.slice(url.indexOf('?') + 1).replace('${AUCTION_LOSS}', '102').replace('${AUCTION_MIN_TO_WIN}', '').replace('${AUCTION_PRICE}', '0.5');
    return (await handle(kind, q)).status;
  };
  return {
    warnings,
    losses,
    observed,
    notice,
    /** `n` bids no notice comes for (first price unless said), then the clock past their TTL. */
    silent(n: number, firstPrice = true): void {
      const from = now;
      for (let i = 0; i < n; i++) {
        const id = `b${seq++}`;
        issued.add(id, { pctr: 0.01, userKey: '', categories: [], segment: 'ex|banner|site|s1', bidCpmUsd: 1 });
        issued.describe(id, 'c', 'cr', 'ex', firstPrice);
      }
      now = from + TTL_MS + 1;
    },
    /** The next bid, which drops the expired ones (and tells their silence). */
    flush(): void {
      this.silent(0);
      issued.add(`b${seq++}`, { pctr: 0.01, userKey: '', categories: [], segment: 'ex|banner|site|s1', bidCpmUsd: 1 });
    },
  };
}

describe('lossNotices: auto', () => {
  it('is the default of every exchange but those that say otherwise', () => {
    const { exchanges } = loadPolicies('policies');
    expect(exchanges.get('default')!.lossNotices).toBe('auto');
    expect(exchanges.get('demo-eu')!.lossNotices).toBe('auto');
    expect(exchanges.get('prebid')!.lossNotices).toBe(false);
  });

  it('takes silent bids as losses once 1,000 first-price bids expired unheard with no loss notice, and stops at the first loss notice', async () => {
    const w = wired({ lossNotices: 'auto' });
    // Second-price silences are no evidence: such an exchange may send no loss notice on price.
    w.silent(3000, false);
    w.silent(999);
    w.flush();
    expect(w.losses).toEqual([]);
    expect(w.warnings).toEqual([]);
    // The 1,000th: the switch, logged once. The bids before it are not learnt after the fact.
    w.silent(1);
    w.flush();
    expect(w.losses).toEqual([]);
    expect(w.warnings).toHaveLength(1);
    expect(w.warnings[0]).toMatch(/^exchange ex has sent no loss notice for 1000 first-price bids: on lossNotices auto, its bids that expire unheard are taken as lost from now on/);
    // From then on each silent bid is a loss at its bid, first price or not, as on lossNotices: false.
    w.silent(3);
    w.silent(2, false);
    w.flush();
    expect(w.losses).toHaveLength(5);
    expect(w.losses[0]).toEqual(['c', 'cr', 1, undefined, w.losses[0][4]]);
    expect(w.observed.filter((o) => o[2] === false)).toHaveLength(5);
    expect(w.warnings).toHaveLength(1);
    // A loss notice: it sends them after all. Silence teaches nothing again, for good.
    expect(await w.notice('loss', 'elsewhere')).toBe(200);
    expect(w.warnings).toHaveLength(2);
    expect(w.warnings[1]).toMatch(/^exchange ex sent a loss notice: on lossNotices auto, bids that expire unheard are no longer taken as lost/);
    w.losses.length = 0;
    w.silent(3000);
    w.flush();
    expect(w.losses).toEqual([]);
    expect(w.warnings).toHaveLength(2);
  });

  it('never infers on an exchange that has sent a loss notice, and keeps true and false as they were', async () => {
    const a = wired({ lossNotices: 'auto' });
    expect(await a.notice('loss', 'x')).toBe(200);
    a.losses.length = 0;
    a.silent(5000);
    a.flush();
    expect(a.losses).toEqual([]);
    expect(a.warnings).toEqual([]);
    const t = wired({ lossNotices: true });
    t.silent(5000);
    t.flush();
    expect(t.losses).toEqual([]);
    expect(t.warnings).toEqual([
      'exchange ex has sent no loss notice for 1000 first-price bids: if it never sends them, set lossNotices: false in exchanges.yaml (without losses the shader learns from wins alone and shades bids down until they stop winning)',
    ]);
    const f = wired({ lossNotices: false });
    f.silent(3);
    f.flush();
    expect(f.losses).toHaveLength(3);
  });

  it('stays off on a process that hears notices for bids of another it cannot pass them to (one notice URL, no notice peers)', async () => {
    const w = wired({ lossNotices: 'auto' });
    w.silent(10);
    w.flush();
    // In time, for a bid this process never made, made after its start (a bid of the run before
    // a restart is past its expiry by then): another process shares this one's notice URL.
    expect(await w.notice('win', 'theirs')).toBe(200);
    w.silent(3000);
    w.flush();
    expect(w.losses).toEqual([]);
    expect(w.warnings).toHaveLength(1);
    expect(w.warnings[0]).toMatch(/^exchange ex has sent no loss notice for 1000 first-price bids, but a notice for a bid this process did not make reached it in time, and it has no notice peers \(Redis\) to pass notices on \(another process sharing the notice URL, or a bid of a run before a restart\)/);
    // Switched on before such a notice: off at it.
    const v = wired({ lossNotices: 'auto' });
    v.silent(1000);
    v.flush();
    v.silent(1);
    v.flush();
    expect(v.losses).toHaveLength(1);
    expect(await v.notice('win', 'theirs')).toBe(200);
    v.silent(5);
    v.flush();
    expect(v.losses).toHaveLength(1);
    expect(v.warnings[1]).toMatch(/^a notice for a bid this process did not make reached it in time, .* \(another process sharing the notice URL, or a bid of a run before a restart\): on lossNotices auto, bids that expire unheard are not taken as lost on ex until /);
    // No such notice since: once its expiry and this process's TTL have passed, on again, logged.
    v.silent(5);
    v.flush();
    expect(v.losses).toHaveLength(6);
    expect(v.warnings).toHaveLength(3);
    expect(v.warnings[2]).toMatch(/^notices for bids this process did not make have stopped .*: on lossNotices auto, bids of ex that expire unheard are taken as lost again/);
  });

  it('a notice of a bid of the run before a restart still in time (a longer noticeTtlMs then) keeps it off only until that bid expired and this TTL passed', async () => {
    // Review's case: this run's TTL is 60 s, the previous run's 4 min; one of its wins comes in
    // after this run's first own bid expired. It turned auto off for the whole run (0 of 3,000
    // silent first-price bids inferred).
    const w = wired({ lossNotices: 'auto' });
    w.silent(1);
    w.flush();
    expect(await w.notice('win', 'previous-run', 4 * TTL_MS)).toBe(200);
    // Bids made while that notice could come: evidence, not inferred.
    w.silent(999);
    w.flush();
    w.silent(1000);
    w.flush();
    expect(w.losses).toEqual([]);
    expect(w.warnings).toHaveLength(1);
    expect(w.warnings[0]).toMatch(/^exchange ex has sent no loss notice for 1000 first-price bids, but a notice for a bid this process did not make reached it in time/);
    // Made after it expired, and heard of nowhere: losses.
    w.silent(1000);
    w.flush();
    expect(w.losses).toHaveLength(1000);
    expect(w.warnings).toHaveLength(2);
    expect(w.warnings[1]).toMatch(/^notices for bids this process did not make have stopped/);
  });

  it('stays off while notices of bids it did not make keep coming (another process behind its notice URL)', async () => {
    const w = wired({ lossNotices: 'auto' });
    w.silent(1000);
    w.flush();
    w.silent(1);
    w.flush();
    expect(w.losses).toHaveLength(1);
    for (let i = 0; i < 20; i++) {
      expect(await w.notice('win', `theirs-${i}`)).toBe(200);
      w.silent(500);
      w.flush();
    }
    expect(w.losses).toHaveLength(1);
    expect(w.warnings).toHaveLength(2);
    expect(w.warnings[1]).toMatch(/^a notice for a bid this process did not make reached it in time/);
  });

  it('a notice for a bid of the run before a restart, or with notice peers to pass it to, leaves it on', async () => {
    // Before the first bid expired: it may be a bid of the run before a restart.
    const r = wired({ lossNotices: 'auto' });
    expect(await r.notice('win', 'before-restart')).toBe(200);
    r.silent(1000);
    r.flush();
    r.silent(1);
    r.flush();
    expect(r.losses).toHaveLength(1);
    const told: string[] = [];
    const p = wired({ lossNotices: 'auto', peers: { tell: (id) => void told.push(id) } });
    p.silent(10);
    p.flush();
    expect(await p.notice('win', 'theirs')).toBe(200);
    expect(told).toContain('theirs');
    p.silent(990);
    p.flush();
    p.silent(1);
    p.flush();
    expect(p.losses).toHaveLength(1);
  });
});
