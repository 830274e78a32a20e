import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { startHttpServer, type HttpHandlers, type HttpServer } from '../src/server/http.js';
import type { Answer } from '../src/errors/answer.js';

/**
 * A client that pipelines requests and never reads the answers must not make the server buffer
 * them without limit: uWS reads on (the client keeps sending, so no idle timeout fires) and, with
 * `end`, kept every answer in memory (review sec: +87 MB RSS in 20 s from one connection on
 * GET /healthz). The rule (src/server/http.ts, `write`): an answer the socket does not take at once
 * stays pending, the rest sent as the socket drains; uWS closes a connection that sends another
 * request behind it. A slow reader of one large answer is not cut.
 */

/** Sends `request` pipelined until the server closes the connection or `capBytes` are sent; reads nothing. */
async function pipelineUnread(port: number, request: string, capBytes: number): Promise<{ sent: number; closed: boolean }> {
  const s = connect(port, '127.0.0.1');
  s.pause();
  let closed = false;
  s.on('close', () => (closed = true));
  s.on('error', () => {});
  await once(s, 'connect');
  const chunk = Buffer.from(request.repeat(1000));
  let sent = 0;
  while (!closed && sent < capBytes) {
    if (!s.write(chunk)) await new Promise((r) => (s.once('drain', r), s.once('close', r)));
    sent += chunk.length;
  }
  s.destroy();
  return { sent, closed };
}

// Loopback's kernel buffers hold a few MB of answers on each side; past them the server must stop.
const CAP = 24 * 2 ** 20;

describe('a client that pipelines and does not read', () => {
  let t: TestBidder;
  let port: number;
  beforeAll(async () => {
    t = await startBidder();
    port = Number(new URL(t.url).port);
  });
  afterAll(() => t.close());

  for (const [name, request] of [
    ['GET /healthz (answered at once, with a body)', 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['GET on an unknown path (a 404 with a body)', 'GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['HEAD /healthz (an answer without a body)', 'HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a CORS preflight (a 204 without a body)', 'OPTIONS /openrtb2/prebid/bid HTTP/1.1\r\nHost: x\r\nOrigin: https://pub.example\r\nAccess-Control-Request-Method: POST\r\n\r\n'],
    ['GET /notice/click (answered later)', 'GET /notice/click?b=x&c=y&k=z&e=default&x=1&s=AAAA HTTP/1.1\r\nHost: x\r\n\r\n'],
  ]) {
    it(`${name}: the server closes the connection and answers others`, async () => {
      const r = await pipelineUnread(port, request, CAP);
      expect(r.closed).toBe(true);
      expect(r.sent).toBeLessThan(CAP);
      expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    });
  }
});

describe('a slow reader of one large answer', () => {
  let server: HttpServer;
  let answer: Answer;
  beforeAll(async () => {
    const small: Answer = { status: 200, body: '{"ok":true}' };
    const handlers: HttpHandlers = {
      maxBodyBytes: () => 1024,
      exchange: () => undefined,
      bid: () => small,
      notice: async () => small,
      admin: async () => small,
      healthz: () => answer,
      readyz: async () => small,
      metrics: async () => answer,
      now: () => Date.now(),
      onBug: () => {},
      onRefused: () => {},
    };
    server = await startHttpServer('127.0.0.1', 0, handlers);
  });
  afterAll(() => server.drain(0));

  /** GET `path` on a socket that reads nothing for a while, then everything: the whole answer, and whether the connection took a second request. */
  async function slowGet(path: string): Promise<{ body: Buffer; again: boolean }> {
    const s: Socket = connect(server.port, '127.0.0.1');
    s.pause();
    await once(s, 'connect');
    s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    // Long enough for the server to fill the socket and find it full.
    await new Promise((r) => setTimeout(r, 100));
    const chunks: Buffer[] = [];
    let size = 0;
    let total = -1;
    let headEnd = -1;
    const done = new Promise<void>((resolve, reject) => {
      s.on('data', (c: Buffer) => {
        chunks.push(c);
        size += c.length;
        if (headEnd < 0) {
          const all = Buffer.concat(chunks);
          headEnd = all.indexOf('\r\n\r\n');
          if (headEnd >= 0) total = Number(/content-length: (\d+)/i.exec(all.subarray(0, headEnd).toString())![1]);
        }
        if (headEnd >= 0 && size >= headEnd + 4 + total) resolve();
      });
      s.on('close', () => reject(new Error(`closed after ${size} bytes`)));
      s.on('error', () => {});
    });
    s.resume();
    await done;
    const all = Buffer.concat(chunks);
    const body = all.subarray(headEnd + 4, headEnd + 4 + total);
    // Keep-alive: the connection answers the next request.
    const next = new Promise<boolean>((resolve) => {
      s.removeAllListeners('data');
      s.removeAllListeners('close');
      s.on('data', (c: Buffer) => resolve(c.toString().startsWith('HTTP/1.1 200')));
      s.on('close', () => resolve(false));
    });
    s.write('GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n');
    const again = await next;
    s.destroy();
    return { body, again };
  }

  it('a 32 MB answer (bytes) reaches a client that reads late, whole, and the connection goes on', async () => {
    const bytes = Buffer.alloc(32 * 2 ** 20);
    for (let i = 0; i < bytes.length; i += 4096) bytes.writeUInt32BE(i, i);
    answer = { status: 200, body: bytes };
    const r = await slowGet('/healthz');
    expect(r.body.length).toBe(bytes.length);
    expect(r.body.equals(bytes)).toBe(true);
    expect(r.again).toBe(true);
  });

  it('a 32 MB answer (text, multi-byte) likewise, from an answer written later', async () => {
    const text = 'é€'.repeat(32 * 2 ** 20 / 5);
    answer = { status: 200, body: text };
    const r = await slowGet('/metrics');
    expect(r.body.length).toBe(Buffer.byteLength(text));
    expect(r.body.toString() === text).toBe(true);
    expect(r.again).toBe(true);
  });
});
