import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { connectRedis, REDIS_URL } from './helpers/redis.js';
import { TEST_SECRET } from './helpers/bidder.js';

const client = await connectRedis();
if (!client && process.env.CI === 'true') throw new Error(`Redis unreachable at ${REDIS_URL}: the kill -9 suite needs it in CI`);

/**
 * The bidder in a child process whose one libuv thread is held by an open of a FIFO no one writes:
 * anything left to the thread pool (an asynchronous file write) never happens before the kill, so
 * what is on disk is exactly what reached the kernel on the main thread. The ledger is Redis's
 * (sockets, no thread pool): the journal's fdatasync would wait on the held thread too.
 */
const CHILD = `
import { execFileSync } from 'node:child_process';
import { open } from 'node:fs';
const { createBidder } = await import(process.env.BIDDER_MODULE);
const o = JSON.parse(process.env.BIDDER_OVERRIDES);
const b = await createBidder({ policiesDir: o.policiesDir, watchModels: false, overrides: o.overrides });
execFileSync('mkfifo', [o.fifo]);
open(o.fifo, 'r', () => {});
await new Promise((r) => setTimeout(r, 50));
process.send({ url: b.url });
`;

describe.skipIf(!client)('event log under kill -9', () => {
  const prefix = `test:eventlog-kill9:${process.pid}:${Date.now().toString(36)}:`;
  const dirs: string[] = [];
  afterAll(async () => {
    const keys = await client!.keys(`${prefix}*`);
    if (keys.length) await client!.del(...keys);
    client!.disconnect();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('every win answered 200 is in the log file when the process is killed right after (it was only queued for a later turn), its bid record\'s write held or not', async () => {
    if (!existsSync('dist/bidder.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
    const dir = mkdtempSync(join(tmpdir(), 'eventlog-kill9-'));
    dirs.push(dir);
    const policiesDir = join(dir, 'policies');
    cpSync('policies', policiesDir, { recursive: true });
    writeFileSync(join(dir, 'child.mjs'), CHILD);
    const events = join(dir, 'events');
    const overrides = {
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      noticeSecret: TEST_SECRET,
      seed: 'kill9',
      eventLog: { dir: events, rotateBytes: 1 << 20, enabled: true, keepBytes: 0 },
      ledger: { journalPath: join(dir, 'ledger'), redisUrl: REDIS_URL, keyPrefix: prefix, commandTimeoutMs: 2000 },
    };
    const child: ChildProcess = fork(join(dir, 'child.mjs'), [], {
      env: { ...process.env, UV_THREADPOOL_SIZE: '1', BIDDER_MODULE: pathToFileURL(resolve('dist/bidder.js')).href, BIDDER_OVERRIDES: JSON.stringify({ policiesDir, overrides, fifo: join(dir, 'hold') }) },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const exited = new Promise((r) => child.once('exit', r));
    try {
      const { url } = await new Promise<{ url: string }>((res, rej) => {
        child.once('message', (m) => res(m as { url: string }));
        child.once('exit', (code) => rej(new Error(`the bidder exited (${code}) before listening`)));
      });
      const onDisk = () =>
        existsSync(events)
          ? readdirSync(events).flatMap((f) => readFileSync(join(events, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; bidId: string; priceCpmUsd?: number }))
          : [];
      const bids = [];
      for (let i = 0; i < 8; i++) {
        const body = { id: `k${i}`, at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] }, user: { id: `u${i}` } };
        const r = await fetch(url + '/openrtb2/bid', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
        if (r.status === 200) bids.push((await r.json()).seatbid[0].bid[0] as { id: string; price: number; nurl: string });
      }
      expect(bids.length).toBeGreaterThan(3);
      const answered: Array<{ bidId: string; price: number }> = [];
      for (const b of bids) {
        const price = +(b.price * 0.5).toFixed(4);
        const r = await fetch(url + b.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(price)).replace('${AUCTION_MIN_TO_WIN}', ''));
        expect(r.status).toBe(200);
        answered.push({ bidId: b.id, price });
        // What a kill -9 at this moment would leave.
        expect(onDisk().filter((r) => r.type === 'win').map((r) => r.bidId)).toEqual(answered.map((a) => a.bidId));
      }
      child.kill('SIGKILL');
      await exited;
      const left = onDisk();
      expect(left.filter((r) => r.type === 'win').map((r) => [r.bidId, r.priceCpmUsd])).toEqual(answered.map((a) => [a.bidId, a.price]));
      // The bids' records were left to the thread pool, held all along: no bid's answer, nor a
      // win's, waited on them. Such a kill loses them; the report counts the wins without their bids.
      expect(left.filter((r) => r.type === 'bid')).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });
});
