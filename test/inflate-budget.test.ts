import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * Review item 11: a 51 KB gzip body inflating to 800 KB with 20,000 imps held the loop ~200 ms.
 * The inflate budget (maxDecompressedBytes, 256 KiB: 67 times the largest real request of the
 * corpus) stops it while inflating; what fits the budget has its imps past maxImps dropped before any imp is walked.
 */
describe('inflate budget', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder();
  });
  afterAll(async () => t?.close());

  const request = (imps: number) =>
    gzipSync(JSON.stringify({ id: 'gz', tmax: 3000, site: { id: 's', domain: 'x.example' }, imp: Array.from({ length: imps }, (_, i) => ({ id: String(i), banner: { w: 300, h: 250 } })) }));

  it('a small gzip body that inflates past 256 KiB is 413 DECOMPRESSED_TOO_LARGE', async () => {
    const body = request(14_000);
    expect(body.length).toBeLessThan(64 * 1024);
    const r = await t.post('/openrtb2/bid', body, { 'content-encoding': 'gzip' });
    expect(r.status).toBe(413);
    expect((await r.json()).error).toBe('DECOMPRESSED_TOO_LARGE');
  });

  it('one that fits the budget but carries thousands of imps is bid on its first maxImps (20) only', async () => {
    const r = await t.post('/openrtb2/bid', request(3_000), { 'content-encoding': 'gzip' });
    expect(r.status).toBe(200);
    const impids = (await r.json()).seatbid.flatMap((s: { bid: Array<{ impid: string }> }) => s.bid.map((b) => Number(b.impid)));
    expect(Math.max(...impids)).toBeLessThan(20);
  });
});
