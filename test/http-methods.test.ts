import { Agent, request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * HEAD is GET without the body (RFC 9110 §9.3.2), and an answer to HEAD carries no body: one
 * after its headers is read by a keep-alive client as the start of the next answer. And a wrong
 * method on a notice route is 405, as on the bid routes (docs/errors.md); a POST is read as the GET
 * (test/http-conformance-headers.test.ts).
 */
let t: TestBidder;
beforeAll(async () => {
  t = await startBidder();
});
afterAll(() => t.close());

/** `method path` on `agent`'s connection: status, content-length header and body. */
function call(agent: Agent, method: string, path: string): Promise<{ status: number; length: string | undefined; body: string }> {
  const url = new URL(t.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, agent }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, length: res.headers['content-length'], body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HEAD and wrong methods', () => {
  it('HEAD on the health routes answers as GET without a body, and the keep-alive connection goes on', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const get = await call(agent, 'GET', '/healthz');
      // Before: 404 NOT_FOUND with a body, which the next answer's parse choked on (HPE_INVALID_CONSTANT).
      const head = await call(agent, 'HEAD', '/healthz');
      expect(head).toEqual({ status: 200, length: String(Buffer.byteLength(get.body)), body: '' });
      expect((await call(agent, 'HEAD', '/readyz')).status).toBe(200);
      expect((await call(agent, 'HEAD', '/metrics')).status).toBe(200);
      // Routes without HEAD: their error, still without a body.
      expect(await call(agent, 'HEAD', '/openrtb2/bid')).toMatchObject({ status: 405, body: '' });
      expect(await call(agent, 'HEAD', '/nowhere')).toMatchObject({ status: 404, body: '' });
      expect(await call(agent, 'GET', '/healthz')).toEqual(get);
    } finally {
      agent.destroy();
    }
  });

  it('a POST to a path under /openrtb2/ that is no bid route is 404, a GET on a bid route 405', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // Before: 405 METHOD_NOT_ALLOWED on every path under /openrtb2/.
      for (const path of ['/openrtb2/auction', '/openrtb2/bid/', '/openrtb2/prebid-server/bid/', '/openrtb2/a/b/bid']) {
        const post = await call(agent, 'POST', path);
        expect([path, post.status, JSON.parse(post.body).error]).toEqual([path, 404, 'NOT_FOUND']);
      }
      for (const path of ['/openrtb2/bid', '/openrtb2/prebid-server/bid']) {
        const get = await call(agent, 'GET', path);
        expect([path, get.status, JSON.parse(get.body).error]).toEqual([path, 405, 'METHOD_NOT_ALLOWED']);
      }
    } finally {
      agent.destroy();
    }
  });

  it('a notice route answers another method than GET or POST with 405 (HEAD without a body, settling nothing)', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const put = await call(agent, 'PUT', '/notice/win');
      expect(put.status).toBe(405);
      expect(JSON.parse(put.body).error).toBe('METHOD_NOT_ALLOWED');
      expect(await call(agent, 'HEAD', '/notice/click')).toMatchObject({ status: 405, body: '' });
      expect((await call(agent, 'POST', '/notice/nonsense')).status).toBe(404);
      expect((await call(agent, 'GET', '/healthz')).status).toBe(200);
    } finally {
      agent.destroy();
    }
  });
});
