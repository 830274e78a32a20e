import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { settledUsd } from './helpers/money.js';
import type { Settings } from '../src/config/settings.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * The notice secret across restarts of the real bidder. Before: a restart with a new NOTICE_SECRET
 * refused the win notice of a bid made under the old one (403 NOTICE_BAD_SIGNATURE, `forged`, spend
 * 0; exchanges do not retry a 403) with no setting to keep the old one; a kept `notice-secret`
 * damaged to `short` was replaced at the next start (logged `created: true` at info) and the old
 * notices refused the same way; a kept one other users could read was used without a word.
 */
const req = (id: string) => ({ id, at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });
const OLD = 'aaaaaaaaaaaaaaaaaaaaaaaa';
const NEW = 'bbbbbbbbbbbbbbbbbbbbbbbb';

describe('the notice secret across restarts', () => {
  let journal: string;
  beforeEach(() => {
    journal = mkdtempSync(join(tmpdir(), 'secret-restart-'));
    // Without noticeSecret the bidder takes NOTICE_SECRET before the kept file.
    delete process.env.NOTICE_SECRET;
  });
  afterEach(() => rmSync(journal, { recursive: true, force: true }));
  const boot = (o: Partial<Settings>, logger?: pino.Logger) => startBidder({ ledger: { journalPath: journal, redisUrl: '' } as Settings['ledger'], ...o }, 'policies', { logger });
  /** A bid's win URL at its own price, on whichever bidder hears it. */
  async function bidUnder(o: Partial<Settings>): Promise<{ cid: string; price: number; path: string }> {
    const t = await boot(o);
    try {
      const bid = (await (await t.bid(req(`r-${Math.random()}`))).json()).seatbid[0].bid[0];
      return { cid: bid.cid, price: bid.price, path: bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(bid.price)).replace('${AUCTION_MIN_TO_WIN}', '') };
    } finally {
      await closeKeeping(t);
    }
  }
  /** Closes a bidder, removing its event-log folder and keeping the journal. */
  async function closeKeeping(t: TestBidder): Promise<void> {
    await t.bidder.close();
    rmSync(t.dir, { recursive: true, force: true });
  }

  it('a rotation with the old secret as previous keeps the notices of the bids signed before it', async () => {
    const bid = await bidUnder({ noticeSecret: OLD });
    let t = await boot({ noticeSecret: NEW });
    try {
      // Before: no setting took the old key.
      expect((await fetch(t.url + bid.path)).status).toBe(403);
      expect(await t.metric('bidder_notices_total', { kind: 'win', result: 'forged' })).toBe(1);
    } finally {
      await closeKeeping(t);
    }
    t = await boot({ noticeSecret: NEW, noticeSecretPrevious: [OLD] });
    try {
      expect((await fetch(t.url + bid.path)).status).toBe(200);
      expect(await t.metric('bidder_spend_usd_total', { campaign: bid.cid })).toBeCloseTo(settledUsd(bid.price), 9);
    } finally {
      await closeKeeping(t);
    }
  });

  it('NOTICE_SECRET_PREVIOUS, comma-separated, is the same setting', async () => {
    const bid = await bidUnder({ noticeSecret: OLD });
    process.env.NOTICE_SECRET_PREVIOUS = ` ${'c'.repeat(20)} ,${OLD}`;
    try {
      const t = await boot({ noticeSecret: NEW });
      try {
        expect((await fetch(t.url + bid.path)).status).toBe(200);
      } finally {
        await closeKeeping(t);
      }
    } finally {
      delete process.env.NOTICE_SECRET_PREVIOUS;
    }
  });

  it('a damaged kept secret stops the start and is left as it is; the notices signed with it still settle once it is restored', async () => {
    const bid = await bidUnder({ noticeSecret: '' });
    const file = join(journal, 'notice-secret');
    const kept = readFileSync(file, 'utf8');
    writeFileSync(file, 'short\n');
    // Before: the start went on with a new secret written over it, and the win below was refused.
    await expect(boot({ noticeSecret: '' })).rejects.toThrow(/notice-secret is damaged \(5 characters, 16 or more expected\)/);
    expect(readFileSync(file, 'utf8')).toBe('short\n');
    writeFileSync(file, kept);
    const t = await boot({ noticeSecret: '' });
    try {
      expect((await fetch(t.url + bid.path)).status).toBe(200);
    } finally {
      await closeKeeping(t);
    }
  });

  it('a kept secret other users can read is warned of at start', async () => {
    await closeKeeping(await boot({ noticeSecret: '' }));
    chmodSync(join(journal, 'notice-secret'), 0o644);
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (s: string) => lines.push(s) });
    const t = await boot({ noticeSecret: '' }, logger);
    await closeKeeping(t);
    expect(lines.some((l) => /can be read or written by other users \(mode 0644\)/.test(l))).toBe(true);
  });

  it('serve with a damaged kept secret exits 1 with one message', () => {
    const dir = mkdtempSync(join(tmpdir(), 'secret-serve-'));
    try {
      cpSync('policies', dir, { recursive: true });
      const yaml = join(dir, 'bidder.yaml');
      writeFileSync(yaml, readFileSync(yaml, 'utf8').replace(/^(\s*)dir: var\/events$/m, `$1dir: ${join(dir, 'events')}`).replace(/^(\s*)journalPath: .*$/m, `$1journalPath: ${join(dir, 'ledger')}`));
      cpSync(join(journal), join(dir, 'ledger'), { recursive: true });
      writeFileSync(join(dir, 'ledger', 'notice-secret'), 'short\n');
      const env = { ...process.env };
      delete env.NOTICE_SECRET;
      for (const workers of [[], ['--workers', '2', '--redis', 'redis://127.0.0.1:1']]) {
        const run = spawnSync(process.execPath, ['dist/cli.js', 'serve', '--policies', dir, '--host', '127.0.0.1', '--port', '0', ...workers], { env, encoding: 'utf8', timeout: 30_000 });
        expect(run.status, run.stderr).toBe(1);
        expect(run.stderr.trim().split('\n')).toHaveLength(1);
        expect(run.stderr).toMatch(/^bidder: cannot start: the notice secret kept in .*notice-secret is damaged/);
        expect(readFileSync(join(dir, 'ledger', 'notice-secret'), 'utf8')).toBe('short\n');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
