import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createNoticeFirer } from '../src/harness/exchange.js';
import { loadPolicies } from '../src/config/policies.js';
import { markup, type OutBid } from '../src/respond/respond.js';
import { noticeUrl, noticeUrls } from '../src/notices/sign.js';
import { createRng } from '../src/random/random.js';

/** A local HTTP server that answers every request and records the paths asked for. */
async function recordingServer() {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(req.url ?? '');
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

describe('load-test notices', () => {
  it('fires the click URL of real banner markup unescaped (the markup writes & as &#38;)', async () => {
    const creative = loadPolicies('policies').campaigns[0].creatives.find((c) => c.format === 'banner')!;
    const claims = { bidId: 'bid1', campaignId: 'acme', creativeId: 'x', bidPrice: 1, cur: 'USD', exchange: 'default', expiresAtMs: 123 };
    const notices = noticeUrls('http://127.0.0.1:8080', claims, { win: 'abc', billing: 'abc', loss: 'abc', click: 'abc', impression: '' }, { expandPrice: false, nurl: true });
    const bid: OutBid = { id: 'bid1', impid: '1', price: 1, creative, campaignId: 'acme', adomain: [], cat: [], cattax: 1, dealId: '', notices, fit: { kind: 'banner' }, test: false, dsa: undefined };
    const adm = markup(bid);
    expect(adm).toContain('&#38;');
    const { origin, seen, server } = await recordingServer();
    const firer = createNoticeFirer({ origin, rng: createRng(1), plan: { winShare: 1, billingShare: 0, clickShare: 1, lossShare: 0 }, maxInFlight: 10 });
    firer.onBidResponse(JSON.stringify({ seatbid: [{ bid: [{ price: 1, adm }] }] }));
    await firer.idle();
    server.close();
    expect(seen).toEqual(['/notice/click?b=bid1&c=acme&k=x&e=default&x=123&s=abc']);
    expect(noticeUrl(notices, 'click')).toBe('http://127.0.0.1:8080/notice/click?b=bid1&c=acme&k=x&e=default&x=123&s=abc');
  });

  it('sends the same notice requests to /notice/unrouted when the plan says so (the --notice-cost floor)', async () => {
    const claims = { bidId: 'bid2', campaignId: 'acme', creativeId: 'x', bidPrice: 2, cur: 'USD', exchange: 'default', expiresAtMs: 123 };
    const notices = noticeUrls('http://127.0.0.1:8080', claims, { win: 'abc', billing: 'abc', loss: 'abc', click: 'abc', impression: '' }, { expandPrice: false, nurl: true });
    const { origin, seen, server } = await recordingServer();
    const response = JSON.stringify({ seatbid: [{ bid: [{ price: 2, nurl: noticeUrl(notices, 'win') }] }] });
    for (const unrouted of [false, true]) {
      const firer = createNoticeFirer({ origin, rng: createRng(1), plan: { winShare: 1, billingShare: 0, clickShare: 0, lossShare: 0, unrouted }, maxInFlight: 10 });
      firer.onBidResponse(response);
      await firer.idle();
    }
    server.close();
    const [routed, unrouted] = seen.map((u) => u.split('?'));
    expect(routed[0]).toBe('/notice/win');
    expect(unrouted[0]).toBe('/notice/unrouted');
    expect(unrouted[1]).toBe(routed[1]);
    expect(routed[1]).toMatch(/^b=bid2&c=acme&k=x&.*&price=\d/);
  });
});
