import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createBidder } from '../src/bidder.js';
import { metricSum } from '../src/harness/prometheus.js';
import { TEST_SECRET } from './helpers/bidder.js';
import { firstBid, loggedWins, startHeldThreadBidder } from './helpers/held-thread-bidder.js';

// The journal's fdatasync runs on the held thread: a win notice waits for it until the kill, as one
// waits for a slow disk's sync (or the group commit's syncWindowMs) when the process dies.
describe('a win whose journal sync a kill -9 interrupts', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('is counted once (event log) before the kill, and the exchange\'s retry after the restart is a duplicate that counts nothing more', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'notice-kill9-'));
    dirs.push(dir);
    const events = join(dir, 'events');
    const journal = join(dir, 'ledger');
    const overrides = {
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      noticeSecret: TEST_SECRET,
      seed: 'kill9',
      eventLog: { dir: events, rotateBytes: 1 << 20, enabled: true, keepBytes: 0 },
      ledger: { journalPath: journal, redisUrl: '' },
      ...(process.env.TEST_MODELS_DIR ? { modelsDir: process.env.TEST_MODELS_DIR } : {}),
    };
    const { child, exited, listening, policiesDir } = startHeldThreadBidder(dir, overrides);
    const wins = (bidId: string) => loggedWins(events, bidId);
    const settleLines = (bidId: string): string[] =>
      readdirSync(journal)
        .filter((f) => f.startsWith('journal.'))
        .flatMap((f) => readFileSync(join(journal, f), 'utf8').split('\n'))
        .filter((l) => l.includes('"t":"s"') && l.includes(JSON.stringify(bidId)));
    let bid: { id: string; price: number; nurl: string } | undefined;
    let winUrl = '';
    try {
      const { url } = await listening;
      bid = await firstBid(url);
      expect(bid).toBeDefined();
      const price = +(bid!.price * 0.5).toFixed(4);
      winUrl = bid!.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(price)).replace('${AUCTION_MIN_TO_WIN}', '');
      // Never answered: the sync it waits for never runs.
      const answer = fetch(url + winUrl).then(
        (r) => r.status,
        () => 'no answer',
      );
      while (settleLines(bid!.id).length === 0) await new Promise((r) => setTimeout(r, 10));
      // A round trip through the child's loop: what its turn that wrote the settlement went on to do is done.
      expect((await fetch(url + '/healthz')).status).toBe(200);
      // Before: nothing, the win was to be counted once its sync came back.
      expect(wins(bid!.id).map((r) => r.priceCpmUsd)).toEqual([price]);
      child.kill('SIGKILL');
      await exited;
      expect(await answer).toBe('no answer');
    } finally {
      child.kill('SIGKILL');
      await exited;
    }

    const b = await createBidder({ policiesDir, watchModels: false, overrides });
    try {
      const retry = await fetch(b.url + winUrl);
      expect(retry.status).toBe(200);
      const text = await (await fetch(b.opsUrl + '/metrics')).text();
      expect(metricSum(text, 'bidder_notices_total', { kind: 'win', result: 'duplicate' })).toBe(1);
      expect(metricSum(text, 'bidder_notices_total', { kind: 'win', result: 'ok' })).toBe(0);
    } finally {
      await b.close();
    }
    expect(wins(bid!.id)).toHaveLength(1);
    expect(settleLines(bid!.id)).toHaveLength(1);
  });
});
