import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * A bid is priced at USD × the rate, but reserved and settled at its price ÷ the rate signed in its
 * URLs: a reload that took EUR 0.92 → 92 (a typo) bid 2300 EUR where it bid 23 and recorded a win
 * at 2300 as 0.025 USD. A reload may move a running rate by at most 25 % either way unless
 * currency.yaml confirms the new rate; every rate moved is logged.
 */
const TOKEN = 'currency-guard-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const banner = (JSON.parse(readFileSync('openrtb/cases/banner-open-auction.json', 'utf8')) as { request: Record<string, unknown> }).request;

describe('a reload that moves a currency rate', () => {
  let dir: string;
  let t: TestBidder;
  const logs: Array<Record<string, unknown>> = [];
  let n = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'currency-guard-'));
    cpSync('policies', dir, { recursive: true });
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logs.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        cb();
      },
    });
    t = await startBidder({ adminToken: TOKEN, logLevel: 'info' }, dir, { logger: pino({ level: 'info' }, sink) });
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const rates = (lines: string) => writeFileSync(join(dir, 'currency.yaml'), `ratesPerUsd:\n${lines}`);
  const SHIPPED_REST = '  GBP: 0.79\n  CHF: 0.88\n  JPY: 150\n  CAD: 1.36\n  AUD: 1.52\n  MXN: 17.1\n  RUB: 92\n  BRL: 5.0\n  INR: 83\n  CNY: 7.2\n';
  const reload = async () => {
    const r = await t.post('/admin/reload/policies', '', auth);
    return { status: r.status, body: (await r.json()) as { problems?: string[]; rateChanges?: unknown[] } };
  };
  /** A bid on demo-eu asking for EUR: its price and the rate signed in its nurl. */
  const bidEur = async () => {
    const r = await t.bid({ ...banner, id: `eur-${n++}`, tmax: 5000, cur: ['EUR'] }, 'demo-eu');
    expect(r.status).toBe(200);
    const bid = ((await r.json()) as { cur: string; seatbid: Array<{ bid: Array<{ price: number; nurl: string }> }> }).seatbid[0].bid[0];
    const url = new URL(bid.nurl);
    expect(url.searchParams.get('u')).toBe('EUR');
    return { price: bid.price, rate: Number(url.searchParams.get('r')) };
  };

  it('EUR × 100 (and GBP ÷ 10): refused with one message naming both, the old rate keeps pricing bids', async () => {
    const before = await bidEur();
    expect(before.rate).toBe(0.92);
    rates(`  EUR: 92\n${SHIPPED_REST.replace('GBP: 0.79', 'GBP: 0.079')}`);
    const r = await reload();
    expect(r.status).toBe(409);
    expect(r.body.problems).toHaveLength(1);
    const message = r.body.problems![0];
    expect(message).toContain('currency.yaml: EUR 0.92 → 92 (× 100), GBP 0.79 → 0.079 (× 0.1): more than the 25 % a reload may move a rate');
    expect(message).toContain('confirmChanges: { EUR: 92, GBP: 0.079 }');
    const after = await bidEur();
    expect(after.rate).toBe(0.92);
    // Priced as before, not 100 × over (the pacer moves a bid by far less between two requests).
    expect(after.price / before.price).toBeGreaterThan(0.5);
    expect(after.price / before.price).toBeLessThan(2);
  });

  it('EUR × 1.1 with a currency added and one removed: applied, and only the move is logged', async () => {
    rates(`  EUR: 1.012\n${SHIPPED_REST.replace('  RUB: 92\n', '  SEK: 11\n')}`);
    const r = await reload();
    expect(r.status).toBe(200);
    const change = [{ currency: 'EUR', from: 0.92, to: 1.012 }];
    expect(r.body.rateChanges).toEqual(change);
    expect(logs.filter((l) => l.msg === 'policies reloaded').at(-1)).toMatchObject({ rateChanges: change });
    // And on the audit line every admin action writes (the one an operator greps for who did what).
    expect(logs.filter((l) => l.msg === 'admin action').at(-1)).toMatchObject({ action: 'reload policies', rateChanges: change });
    expect((await bidEur()).rate).toBe(1.012);
  });

  it('a currency removed by one reload and added back at 100 × by the next: the second is refused', async () => {
    // GBP: no exchange names it, so a reload may remove it, and any request's `cur` may ask for it.
    rates(`  EUR: 1.012\n${SHIPPED_REST.replace('  RUB: 92\n', '  SEK: 11\n').replace('  GBP: 0.79\n', '')}`);
    expect((await reload()).status).toBe(200);
    rates(`  EUR: 1.012\n${SHIPPED_REST.replace('  RUB: 92\n', '  SEK: 11\n').replace('GBP: 0.79', 'GBP: 79')}`);
    const r = await reload();
    expect(r.status).toBe(409);
    expect(r.body.problems![0]).toContain('GBP 0.79 → 79 (× 100)');
    // Back at its last rate it is applied, as a move of nothing.
    rates(`  EUR: 1.012\n${SHIPPED_REST.replace('  RUB: 92\n', '  SEK: 11\n')}`);
    expect((await reload()).status).toBe(200);
  });

  it('a move of exactly the bound either way is applied (0.736 / 0.92 is 0.7999999999999999)', async () => {
    rates(`  EUR: 0.8096\n${SHIPPED_REST.replace('  RUB: 92\n', '  SEK: 11\n')}`);
    const r = await reload();
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.rateChanges).toEqual([{ currency: 'EUR', from: 1.012, to: 0.8096 }]);
    rates(`  EUR: 1.012\n${SHIPPED_REST.replace('  RUB: 92\n', '  SEK: 11\n')}`);
    expect((await reload()).status).toBe(200);
  });

  it('EUR × 100 confirmed under confirmChanges: applied; the confirmation is inert at any other rate', async () => {
    writeFileSync(join(dir, 'currency.yaml'), `ratesPerUsd:\n  EUR: 101.2\n${SHIPPED_REST}confirmChanges: { EUR: 101.2 }\n`);
    const r = await reload();
    expect(r.status).toBe(200);
    expect(r.body.rateChanges).toEqual([{ currency: 'EUR', from: 1.012, to: 101.2 }]);
    expect((await bidEur()).rate).toBe(101.2);

    // Left in the file, it confirms 101.2 only: a later typo is refused again.
    writeFileSync(join(dir, 'currency.yaml'), `ratesPerUsd:\n  EUR: 1.012\n${SHIPPED_REST}confirmChanges: { EUR: 101.2 }\n`);
    const back = await reload();
    expect(back.status).toBe(409);
    expect(back.body.problems![0]).toContain('EUR 101.2 → 1.012 (× 0.01)');
    expect((await bidEur()).rate).toBe(101.2);
  });

  it('listed with the reload\'s other problems, not only once they are fixed', async () => {
    const shipped = readFileSync(join(dir, 'bidder.yaml'), 'utf8');
    writeFileSync(join(dir, 'bidder.yaml'), shipped.replace('defaultTmaxMs: 200', 'defaultTmaxMs: -5'));
    try {
      rates(`  EUR: 1.012\n${SHIPPED_REST}`);
      const r = await reload();
      expect(r.status).toBe(409);
      expect(r.body.problems).toHaveLength(2);
      expect(r.body.problems!.join('\n')).toContain('/defaultTmaxMs must be >= 1');
      expect(r.body.problems!.join('\n')).toContain('EUR 101.2 → 1.012 (× 0.01)');
    } finally {
      writeFileSync(join(dir, 'bidder.yaml'), shipped);
    }
  });
});
