import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { delta, metricSum, parseSamples } from '../src/harness/prometheus.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * Issue 6 §1: the bidder's deadline is tmax minus the exchange's network allowance; under a flood
 * it answers OVERLOADED no-bids at once (admission control) or DEADLINE no-bids (work abandoned),
 * and never sends a bid past the deadline. Tests do not assert on wall time: the client's elapsed
 * times are printed, the assertions use the bidder's own accounting.
 */
const banner = (JSON.parse(readFileSync('openrtb/cases/banner-open-auction.json', 'utf8')) as { request: Record<string, unknown> }).request;
const multiImp = (JSON.parse(readFileSync('openrtb/cases/multi-imp.json', 'utf8')) as { request: Record<string, unknown> }).request;

function post(agent: Agent, url: string, body: string): Promise<{ status: number; text: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('cold start', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder();
  });
  afterAll(() => t.close());

  // Fails while the model's first call (tfjs graph set-up, wasm kernels) is paid by the first
  // bid request instead of at load: that request overruns its deadline and no-bids.
  it('bids on the first request after start: the model is warmed before the bidder is ready', async () => {
    expect((await fetch(t.url + '/readyz')).status).toBe(200);
    // 80 ms is ample for a warm model (a few ms per call) and short of a cold first call.
    const r = await t.bid({ ...banner, id: 'first', tmax: 100 });
    expect(await t.metric('bidder_nobid_total', { reason: 'DEADLINE' })).toBe(0);
    expect(r.status).toBe(200);
  });
});

describe('flood with a short tmax', () => {
  let t: TestBidder;
  const TMAX = 50;
  beforeAll(async () => {
    // A 5 ms queue delay stands in for a slower model: with the default 20 ms network allowance
    // the bidder has 30 ms per request, so a few hundred at once cannot all be scored in time.
    t = await startBidder({ batcher: { maxBatchRows: 64, maxQueueDelayUs: 5000 } });
    for (let i = 0; i < 5; i++) await t.bid({ ...banner, id: `warm-${i}` });
  });
  afterAll(() => t.close());

  it('answers every request with a bid in time or a no-bid, refusing work it cannot finish (OVERLOADED / DEADLINE)', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 256 });
    const waves = 8;
    const perWave = Number(process.env.PER_WAVE ?? 256);
    const answeredBefore = await t.metric('bidder_requests_total');
    const statuses = new Map<number, number>();
    const bidMs: number[] = [];
    for (let w = 0; w < waves; w++) {
      const wave = Array.from({ length: perWave }, (_, i) => {
        const req = i % 4 === 0 ? { ...multiImp, id: `m${w}-${i}`, tmax: TMAX } : { ...banner, id: `b${w}-${i}`, tmax: TMAX };
        return post(agent, t.url + '/openrtb2/bid', JSON.stringify(req));
      });
      for (const r of await Promise.all(wave)) {
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        expect([200, 204], r.text).toContain(r.status);
        if (r.status === 200) {
          expect((JSON.parse(r.text) as { seatbid: unknown[] }).seatbid.length).toBeGreaterThan(0);
          bidMs.push(r.ms);
        }
      }
    }
    agent.destroy();
    const reasons = Object.entries(delta(new Map(), parseSamples(await (await fetch(t.url + '/metrics')).text()), 'bidder_nobid_total', 'reason')).map(([r, n]) => `${r} ${n}`);
    const overloaded = await t.metric('bidder_nobid_total', { reason: 'OVERLOADED' });
    const deadline = await t.metric('bidder_nobid_total', { reason: 'DEADLINE' });
    const late = await t.metric('bidder_late_answers_total');
    const dropped = await t.metric('bidder_scoring_dropped_rows_total');
    bidMs.sort((a, b) => a - b);
    console.log(
      `flood: ${waves * perWave} requests, tmax ${TMAX} ms; statuses ${JSON.stringify(Object.fromEntries(statuses))}; ` +
        `OVERLOADED ${overloaded}, DEADLINE ${deadline}, late ${late}, rows dropped unscored ${dropped}; ` +
        `no-bids ${reasons.join(', ')}; client ms of bids p50 ${bidMs[bidMs.length >> 1]?.toFixed(1)} max ${bidMs[bidMs.length - 1]?.toFixed(1)}`,
    );
    // Admission control turned work away at the door rather than queueing it.
    expect(overloaded).toBeGreaterThan(0);
    // Every request is accounted for as a bid or a no-bid. Whether any bid fits in a flood, and
    // whether work had to be abandoned after scoring (late), depends on the CPU the test gets:
    // printed above, not asserted (a bid is never sent once the deadline has passed; the pipeline
    // checks after reserving and counts that case in bidder_late_answers_total).
    expect((await t.metric('bidder_requests_total')) - answeredBefore).toBe(waves * perWave);
    // And it recovers at once.
    const after = await t.bid({ ...banner, id: 'after-flood' });
    expect(after.status).toBe(200);
  });

  it('answers a tmax below the network allowance plus the minimum with an immediate no-bid', async () => {
    const before = await t.metric('bidder_nobid_total', { reason: 'TMAX_TOO_SHORT' });
    const r = await t.bid({ ...banner, id: 'short', tmax: 25 });
    expect(r.status).toBe(204);
    expect(await t.metric('bidder_nobid_total', { reason: 'TMAX_TOO_SHORT' })).toBe(before + 1);
  });
});

describe('a request that waited past its deadline before the loop could read it', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder();
  });
  afterAll(() => t.close());

  /** Writes one raw HTTP request on an open connection, then holds this process's loop (which the in-process bidder shares) for `holdMs`. */
  async function sendThenHold(body: string, holdMs: number, path = '/openrtb2/bid', url = t.url): Promise<string> {
    const sock = connect(Number(new URL(url).port), '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const answer = new Promise<string>((resolve) => {
      let text = '';
      sock.on('data', (d) => {
        text += d;
        // A 204 ends at its headers (it has no Content-Length: RFC 9110 §8.6), an answer with a body at its '}'.
        if (/\r\n\r\n/.test(text) && (/^HTTP\/1.1 204 /.test(text) || /content-length: 0\r\n/i.test(text) || text.endsWith('}'))) resolve(text);
      });
    });
    sock.write(`POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    const until = performance.now() + holdMs;
    while (performance.now() < until);
    const text = await answer;
    sock.destroy();
    return text.split('\r\n')[0];
  }

  // The body is cut short on purpose: answered 400 BAD_JSON when it is parsed, a 204 proves the
  // bidder refused it from its tmax and its wait alone, without spending a parse on it.
  const { id: _id, tmax: _tmax, ...rest } = banner;
  const truncated = JSON.stringify({ id: 'waited', tmax: 100, ...rest }).slice(0, 200);

  it('on a free loop the request is parsed (a truncated body is a 400)', async () => {
    expect(await sendThenHold(truncated, 0)).toMatch(/^HTTP\/1.1 400/);
  });

  it('after the loop was held past its deadline it is refused before parsing: 204, OVERLOADED', async () => {
    const before = await t.metric('bidder_nobid_total', { reason: 'OVERLOADED' });
    // tmax 100 less the 20 ms allowance: the deadline passed while the bytes waited 150 ms.
    expect(await sendThenHold(truncated, 150)).toMatch(/^HTTP\/1.1 204/);
    expect(await t.metric('bidder_nobid_total', { reason: 'OVERLOADED' })).toBe(before + 1);
  });

  it('on an exchange answering no-bids with nbr the request is parsed, so that the no-bid can carry its id', async () => {
    // The same wait: parsed (the cut body is a 400), not a 204 Prebid Server's adapter reads as a parse error.
    expect(await sendThenHold(truncated, 150, '/openrtb2/demo-eu/bid')).toMatch(/^HTTP\/1.1 400/);
  });

  it('a tmax above maxTmaxMs is read as maxTmaxMs before parsing too: refused after a wait past it', async () => {
    // tmax 100000 is served as maxTmaxMs (here 120) less the 20 ms allowance, which the 150 ms wait passed.
    const capped = await startBidder({ maxTmaxMs: 120, defaultTmaxMs: 100 });
    try {
      const body = JSON.stringify({ id: 'waited-huge', tmax: 100_000, ...rest }).slice(0, 200);
      expect(await sendThenHold(body, 150, '/openrtb2/bid', capped.url)).toMatch(/^HTTP\/1.1 204/);
    } finally {
      await capped.close();
    }
  });

  it('a longer tmax still fits after the same wait: the request is parsed and answered', async () => {
    const r = await sendThenHold(JSON.stringify({ ...banner, id: 'waited-long', tmax: 1000 }), 150);
    expect(r).toMatch(/^HTTP\/1.1 200/);
  });

  // Counted from the read, a request that waited 250 ms in the socket was timed at a few ms: the
  // histogram BidderP99OverBudget reads stayed low while the exchange waited past its deadline.
  it('its duration (bidder_request_duration_seconds) counts the wait, as its deadline does', async () => {
    const series = async () => {
      const text = await (await fetch(t.bidder.opsUrl + '/metrics')).text();
      const of = (suffix: string, labels: Record<string, string> = {}) => metricSum(text, `bidder_request_duration_seconds_${suffix}`, { exchange: 'default', ...labels });
      return { count: of('count'), sum: of('sum'), under: of('bucket', { le: '0.2' }) };
    };
    const before = await series();
    expect(await sendThenHold(JSON.stringify({ ...banner, id: 'waited-timed', tmax: 1000 }), 250)).toMatch(/^HTTP\/1.1 200/);
    const after = await series();
    expect(after.count - before.count).toBe(1);
    // Over 0.2 s: in no bucket up to le="0.2", and at least as much added to the sum.
    expect(after.under - before.under).toBe(0);
    expect(after.sum - before.sum).toBeGreaterThanOrEqual(0.2);
  });
});
