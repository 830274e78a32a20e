import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNoticeFirer, DEFAULT_NOTICES } from '../src/harness/exchange.js';
import { createRng } from '../src/random/random.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * No personal data (IP addresses, device ids, user ids) reaches the logs or the metrics, whatever
 * the requests carry: every corpus request, plus malformed ones, goes through a bidder logging at
 * trace level, and every id of those requests is looked for in what it logged and exported.
 */
const CORPUS = 'test/fixtures/corpus';
const FILES = ['openrtb-requests.prebid-go.ndjson', 'openrtb-requests.iab-spec.ndjson', 'openrtb-requests.prebid-go.rejected.ndjson'];
const requests: string[] = FILES.flatMap((f) => readFileSync(join(CORPUS, f), 'utf8').split('\n').filter((l) => l.trim()));

// Fields of OpenRTB 2.6 (§3.2.18 Device, §3.2.20 User, §3.2.27 EID) that identify a person or device.
const DEVICE_IDS = ['ip', 'ipv6', 'ifa', 'didsha1', 'didmd5', 'dpidsha1', 'dpidmd5', 'macsha1', 'macmd5'];
const USER_IDS = ['id', 'buyeruid'];

function piiOf(req: Record<string, any>): string[] {
  const out: string[] = [];
  for (const k of DEVICE_IDS) if (typeof req.device?.[k] === 'string') out.push(req.device[k]);
  for (const k of USER_IDS) if (typeof req.user?.[k] === 'string') out.push(req.user[k]);
  for (const eid of req.user?.eids ?? req.user?.ext?.eids ?? []) for (const u of eid?.uids ?? []) if (typeof u?.id === 'string') out.push(u.id);
  // Short values ("1", "abc") would match anywhere; they identify nobody either.
  return out.filter((v) => v.length >= 8);
}

const pii = new Set(requests.flatMap((l) => piiOf(JSON.parse(l))));
const IPV4 = /\b(?:\d{1,3}\.){3}\d{1,3}\b/g;

describe('no personal data in logs or metric labels', () => {
  let t: TestBidder;
  const logs: string[] = [];
  let metricsText = '';

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logs.push(String(chunk));
        cb();
      },
    });
    t = await startBidder({ logLevel: 'trace', seed: 'pii' }, 'policies', { logger: pino({ level: 'trace' }, sink) });
    const bidder = t.bidder;
    const firer = createNoticeFirer({ origin: bidder.url, rng: createRng(3), plan: { ...DEFAULT_NOTICES, winShare: 0.5, clickShare: 0.5 }, maxInFlight: 8 });
    const post = (path: string, body: string) => fetch(bidder.url + path, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    // Only requests carrying personal data can leak it, and one request per distinct value is
    // enough (fixtures share ids); each goes to both routes, and broken.
    const covered = new Set<string>();
    const queue = requests.filter((l) => {
      const fresh = piiOf(JSON.parse(l)).filter((v) => !covered.has(v));
      for (const v of fresh) covered.add(v);
      return fresh.length > 0;
    });
    const worker = async () => {
      for (let line = queue.pop(); line !== undefined; line = queue.pop()) {
        for (const path of ['/openrtb2/bid', '/openrtb2/demo-eu/bid']) {
          const r = await post(path, line);
          const body = await r.text();
          if (r.status === 200) firer.onBidResponse(body);
        }
        // Broken bodies carrying the same ids: error paths log too.
        await (await post('/openrtb2/bid', line.slice(0, -2))).text();
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    await firer.idle();
    metricsText = await (await fetch(bidder.url + '/metrics')).text();
  });

  afterAll(() => t?.close());

  it('has personal data in the requests to look for', () => {
    expect(pii.size).toBeGreaterThan(20);
    expect(logs.length).toBeGreaterThan(0);
  });

  it('exports no id or IP address of any request in /metrics', () => {
    expect([...pii].filter((v) => metricsText.includes(v))).toEqual([]);
    // The bidder's metrics hold no IPv4-shaped value at all.
    expect(metricsText.match(IPV4) ?? []).toEqual([]);
  });

  it('logs no id or IP address of any request', () => {
    const text = logs.join('');
    expect([...pii].filter((v) => text.includes(v))).toEqual([]);
    // Loopback is the bidder's own listen address, not a person's.
    expect((text.match(IPV4) ?? []).filter((ip) => !ip.startsWith('127.') && ip !== '0.0.0.0')).toEqual([]);
  });
});
