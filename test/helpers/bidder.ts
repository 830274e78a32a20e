import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createBidder, type Bidder } from '../../src/bidder.js';
import type { Logger } from 'pino';
import type { Settings } from '../../src/config/settings.js';
import { metricSum } from '../../src/harness/prometheus.js';

/** A settable epoch clock: tests move time to expire notices or cross a day. */
export function testClock(startIso = '2026-06-01T12:00:00Z') {
  let t = Date.parse(startIso);
  const clock = () => t;
  clock.advance = (ms: number) => (t += ms);
  clock.set = (iso: string) => (t = Date.parse(iso));
  return clock;
}

export interface TestBidder {
  bidder: Bidder;
  url: string;
  dir: string;
  clock: ReturnType<typeof testClock>;
  post(path: string, body: string | Buffer, headers?: Record<string, string>): Promise<Response>;
  bid(req: unknown, exchange?: string): Promise<Response>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

export const TEST_SECRET = 'test-notice-secret-0123456789';

/**
 * Boot the real bidder (uWebSockets.js, wasm model, journal ledger) on 127.0.0.1:0 in a temp dir.
 * `logger`: where its log goes (default: silent, from the settings' logLevel).
 */
export async function startBidder(overrides: Partial<Settings> = {}, policiesDir = 'policies', opts: { logger?: Logger } = {}): Promise<TestBidder> {
  const dir = mkdtempSync(join(tmpdir(), 'bidder-test-'));
  const clock = testClock();
  const bidder = await createBidder({
    policiesDir,
    clock,
    watchModels: false,
    logger: opts.logger,
    overrides: {
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      noticeSecret: TEST_SECRET,
      seed: 'test',
      eventLog: { dir: join(dir, 'events'), rotateBytes: 1 << 20, enabled: true },
      ledger: { journalPath: join(dir, 'ledger'), redisUrl: '' },
      ...(process.env.TEST_MODELS_DIR ? { modelsDir: process.env.TEST_MODELS_DIR } : {}),
      ...overrides,
    },
  });
  // Client and server share this process, so the loop is held by start-up for the test as much as
  // for the server; a request sent right after would be read as having queued through that hold
  // (the deadline counts from the loop's lag, src/server/arrival.ts). A few lag-timer ticks on a
  // free loop settle it; a real exchange's requests do queue during such a hold.
  await new Promise((r) => setTimeout(r, 15));
  const url = bidder.url;
  const post = (path: string, body: string | Buffer, headers: Record<string, string> = {}) =>
    fetch(url + path, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  return {
    bidder,
    url,
    dir,
    clock,
    post,
    bid: (req, exchange) => post(exchange ? `/openrtb2/${exchange}/bid` : '/openrtb2/bid', JSON.stringify(req)),
    async metric(name, labels = {}) {
      return metricSum(await (await fetch(bidder.opsUrl + '/metrics')).text(), name, labels);
    },
    async close() {
      await bidder.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const gzip = (s: string) => gzipSync(Buffer.from(s));
