import uWS from 'uWebSockets.js';
import { createHash, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { gzip as zlibGzip } from 'node:zlib';
import type { NoticeKind } from '../types.js';
import { BidderError } from '../errors/codes.js';
import type { ExchangeSettings } from '../config/policies.js';
import { errorAnswer, type Answer } from '../errors/answer.js';
import type { BidInput } from '../pipeline/bid.js';
import { createLagClock } from './arrival.js';
import { createIpMatcher } from '../util/ip.js';

const INTERNAL_ERROR = errorAnswer(new BidderError('INTERNAL'));

/** What the server needs from the rest of the bidder; the only module that touches uWebSockets.js. */
export interface HttpHandlers {
  maxBodyBytes: () => number;
  exchange: (name: string) => ExchangeSettings | undefined;
  /** An Answer at once (a request shed before parsing), else a promise of one. */
  bid: (input: BidInput) => Answer | Promise<Answer>;
  notice: (kind: NoticeKind, query: string, prefetch?: boolean) => Promise<Answer>;
  admin: (method: string, path: string, authorization: string, body: Buffer) => Promise<Answer>;
  healthz: () => Answer;
  readyz: () => Promise<Answer>;
  metrics: () => Promise<Answer>;
  now: () => number;
  /** A handler threw: a bug. Counted and logged; the client gets a 500. */
  onBug: (err: unknown) => void;
  /** A bid request refused here, before the pipeline (403, 404, 413): counted as the pipeline's refusals are. */
  onRefused: (code: string) => void;
}

export interface HttpServer {
  readonly port: number;
  /** The operations listener's port (metrics, admin, health), or undefined when they share `port`. */
  readonly opsPort: number | undefined;
  /**
   * Stop accepting; resolves when in-flight requests have been answered (or the grace period
   * ends), each with `Connection: close`, and every connection is closed.
   */
  drain(graceMs: number): Promise<void>;
  inFlight(): number;
}

/**
 * Whether an Accept-Encoding header takes gzip: `gzip` (or `x-gzip`), else `*`, at a q above 0
 * (RFC 9110 §12.5.3). Prometheus sends `Accept-Encoding: gzip`.
 */
export function acceptsGzip(header: string): boolean {
  let gzip: number | undefined;
  let any: number | undefined;
  for (const part of header.split(',')) {
    const [coding, ...params] = part.split(';');
    const name = coding.trim().toLowerCase();
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p);
      if (m) q = Number(m[1]);
    }
    if (name === 'gzip' || name === 'x-gzip') gzip = Math.max(gzip ?? 0, q);
    else if (name === '*') any = q;
  }
  return (gzip ?? any ?? 0) > 0;
}

const gzipAsync = promisify(zlibGzip);
/** An answer whose body differs with Accept-Encoding says so, for caches between (RFC 9110 §12.5.5). */
const varies = (a: Answer): Answer => ({ ...a, headers: { ...a.headers, vary: 'Accept-Encoding' } });
/**
 * The metrics' answer gzipped, off the event loop (zlib's thread pool): 1.6 MB of text at 5,000
 * campaigns, ~170 KB gzipped.
 */
async function gzipped(a: Answer): Promise<Answer> {
  if (a.status !== 200 || a.body.length === 0) return varies(a);
  return { ...a, body: await gzipAsync(a.body), headers: { ...a.headers, 'content-encoding': 'gzip', vary: 'Accept-Encoding' } };
}

/** A 405 with the Allow header it must carry (RFC 9110 §15.5.6). */
const notAllowed = (allow: string): Answer => ({ ...errorAnswer(new BidderError('METHOD_NOT_ALLOWED')), headers: { allow } });
const ALLOW_BID = 'POST, OPTIONS';
const ALLOW_BID_NO_CORS = 'POST';
const ALLOW_NOTICE = 'GET, POST';
/** A POSTed notice's body, read and ignored (a sendBeacon sends a few bytes, or none). */
const NOTICE_BODY_BYTES = 16 * 1024;
const NOTICE_KINDS = new Set<NoticeKind>(['win', 'billing', 'loss', 'click', 'conversion', 'impression', 'start', 'complete', 'error']);
const OPENRTB_VERSION = '2.6';

function statusLine(status: number): string {
  switch (status) {
    case 200: return '200 OK';
    case 204: return '204 No Content';
    case 302: return '302 Found';
    case 400: return '400 Bad Request';
    case 401: return '401 Unauthorized';
    case 403: return '403 Forbidden';
    case 404: return '404 Not Found';
    case 405: return '405 Method Not Allowed';
    case 409: return '409 Conflict';
    case 410: return '410 Gone';
    case 413: return '413 Payload Too Large';
    case 415: return '415 Unsupported Media Type';
    case 503: return '503 Service Unavailable';
    default: return `${status} Internal Server Error`;
  }
}

interface Aborted {
  /** Nothing more may be written: the client went, or the response was answered (a second end would throw in uWS). */
  aborted: boolean;
  /** A HEAD request: answered with the headers alone (a body after them is read as the next answer on the connection). */
  head?: boolean;
  /** A route off the bid path (notices, preflight): an answer without a body is held to the end of the loop turn (see `write`). */
  holdBodyless?: boolean;
}

const isHead = (req: uWS.HttpRequest): boolean => req.getMethod() === 'head';

const NOTHING = (): void => {};

/** A bid request as the pipeline gets it, with where `send` writes its answer. */
interface ServedBid extends BidInput {
  res: uWS.HttpResponse;
  state: Aborted;
  origin: string;
}

/**
 * `origin`: a browser origin allowed by the exchange's `corsOrigins`, answered with CORS headers
 * (credentials included, as Prebid.js sends them) whatever the status, 204 and errors too: a
 * browser hides an answer without them from the page.
 *
 * What a client has not read is bounded (uWS reads on while a client pipelines requests and never
 * reads the answers, and its idle timeout never fires while the client sends; with `end` every
 * answer was kept: +87 MB in 20 s from one connection pipelining GET /healthz). The rule:
 * - An answer with a body is offered with `tryEnd`: what the socket does not take at once (its
 *   kernel buffer full of answers the client has not read) stays pending, and the rest is sent as
 *   the socket drains (`sendRest`). Meanwhile uWS closes the connection if another request comes
 *   on it, and after its idle timeout (10–14 s) if nothing drains. So a connection holds at most the
 *   kernel's buffers, uWS's cork buffer (16 KB) and one answer, and a slow reader of one large
 *   answer (a bid response of many VAST imps) gets it whole.
 * - A `close` answer ends its connection: `end` buffers it, and uWS closes the connection once it
 *   is sent. Written from code uWS's parser calls synchronously (a route handler, `onData`), uWS
 *   went on to parse and answer a request pipelined behind it on the same connection, and closed
 *   none (RFC 9112 §9.6: no later request is processed). Such an answer is `held`: pending to the
 *   end of the loop turn, and uWS closes a connection that sends another request meanwhile (that
 *   answer then lost: a client that pipelines must retry, §9.3.2); else it is sent and closes.
 * - An answer without a body gives uWS nothing to refuse. Off the bid path (HEAD, a CORS preflight,
 *   a click's redirect) it is held pending to the end of the loop turn, so a client that pipelines
 *   behind it is closed; a 204 no-bid, on the hot path, is written at once (docs/operations.md).
 */
function write(res: uWS.HttpResponse, state: Aborted, a: Answer, rtb: boolean, close: boolean | 'held' = false, origin = ''): void {
  if (state.aborted) return;
  state.aborted = true;
  if (close === 'held' || (!close && (state.head === true || (state.holdBodyless === true && a.body.length === 0)))) {
    let gone = false;
    // A sync route registered none, and uWS aborts the process on a handler returning with its response pending and no handler.
    res.onAborted(() => (gone = true));
    setImmediate(() => gone || send(res, state.head === true, a, rtb, close === 'held', origin));
  } else send(res, state.head === true, a, rtb, close, origin);
}

function send(res: uWS.HttpResponse, head: boolean, a: Answer, rtb: boolean, close: boolean, origin: string): void {
  res.cork(() => {
    res.writeStatus(statusLine(a.status));
    if (rtb) res.writeHeader('x-openrtb-version', OPENRTB_VERSION);
    if (origin !== '') {
      res.writeHeader('access-control-allow-origin', origin);
      res.writeHeader('access-control-allow-credentials', 'true');
      res.writeHeader('vary', 'Origin');
    }
    if (a.headers) for (const k in a.headers) res.writeHeader(k, a.headers[k]);
    if (a.body.length !== 0 && !a.headers?.['content-type']) res.writeHeader('content-type', 'application/json');
    if (head) {
      // The length in a header of its own and no arguments: in this uWS build endWithoutBody(n)
      // leaves the response unanswered (the process aborts when the handler returns), and
      // endWithoutBody(0, ...) adds a second Content-Length of 0. A HEAD has no body to cut off,
      // so `close` is not needed.
      res.writeHeader('content-length', String(Buffer.byteLength(a.body)));
      res.endWithoutBody();
    } else if (a.status === 204) {
      // No Content-Length on a 204 (RFC 9110 §8.6; `end('')` writes one of 0). endWithoutBody with
      // arguments leaves the response pending (above), so a `close` 204 (a no-bid while draining)
      // says so in a header, and the drain's close of every connection ends it.
      if (close) res.writeHeader('connection', 'close');
      res.endWithoutBody();
    } else if (close) res.end(a.body, true);
    // A total size of 0 is the byte length of the body given: no Buffer.byteLength of a text body here.
    else if (!res.tryEnd(a.body, 0)[0]) sendRest(res, a.body);
  });
}

/** The rest of an answer the socket did not take at once, written each time it drains. */
function sendRest(res: uWS.HttpResponse, body: string | Buffer): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  // The response is pending now: uWS aborts the process if a sync route returns without a handler.
  // The route's own (marking it answered) is not needed: `write` has.
  res.onAborted(() => {});
  res.onWritable((offset) => res.tryEnd(bytes.subarray(offset), bytes.length)[0]);
}

/**
 * What of a refused body is read and discarded before its 413 closes the connection (Go's net/http
 * discards 256 KB alike).
 */
const DISCARD_BYTES = 256 * 1024;

/**
 * Read a body under a byte limit: the exact buffer is allocated once when Content-Length is given,
 * chunks are copied in (uWS reuses their memory after the callback), and an over-limit body is
 * answered 413 (with the CORS headers of `origin`, so a page sees why), closing the connection.
 *
 * The 413 waits for the rest of the body, read and discarded: closing while the client still sent
 * reset the connection, and the client's kernel dropped the 413 it had not read yet (review: curl
 * lost 14 of 30, a chunked body 7 of 30, Java 4 of 30). It cannot be sent first and the connection
 * closed after: uWS allows no close once a response has ended. A body past DISCARD_BYTES over the
 * limit, declared or seen, is answered at once: such a client may meet the reset.
 */
function readBody(res: uWS.HttpResponse, state: Aborted, limit: number, contentLength: number, done: (body: Buffer) => void, origin = '', onTooLarge?: () => void, rtb = true): void {
  // Why the body is refused, once it is.
  let over = '';
  // `onTooLarge` as the 413 is written, not when the body is found too large: a drain waits for
  // a body being read, the discarded rest of one too (closed under it, the 413 was lost).
  const refuse = () => {
    onTooLarge?.();
    write(res, state, errorAnswer(new BidderError('BODY_TOO_LARGE', over)), rtb, 'held', origin);
  };
  if (contentLength > limit) {
    over = `${contentLength} > ${limit} bytes`;
    if (contentLength > limit + DISCARD_BYTES) return refuse();
  }
  let buf: Buffer | null = contentLength > 0 && !over ? Buffer.allocUnsafe(contentLength) : null;
  let chunks: Buffer[] | null = contentLength > 0 ? null : [];
  let size = 0;
  res.onData((ab, isLast) => {
    if (state.aborted) return;
    const chunk = new Uint8Array(ab);
    if (over === '' && (size + chunk.length > limit || (buf && size + chunk.length > buf.length))) {
      over = `over ${limit} bytes`;
      buf = null;
      chunks = null;
    }
    if (over !== '') {
      size += chunk.length;
      if (isLast || size > limit + DISCARD_BYTES) refuse();
      return;
    }
    if (buf) buf.set(chunk, size);
    else chunks!.push(Buffer.from(chunk));
    size += chunk.length;
    if (isLast) done(buf ? (size === buf.length ? buf : buf.subarray(0, size)) : chunks!.length === 1 ? chunks![0] : Buffer.concat(chunks!, size));
  });
}

/** The origin to answer with CORS headers: the request's, when the exchange allows it; else ''. */
function corsOrigin(ex: ExchangeSettings | undefined, origin: string): string {
  if (!ex || origin === '' || ex.corsOrigins.length === 0) return '';
  return ex.corsOrigins.includes('*') || ex.corsOrigins.includes(origin) ? origin : '';
}

/** uWS's HTTPS app, or an error naming the files: uWS says only "App construction failed". */
function sslApp(tls: { keyFile: string; certFile: string }): uWS.TemplatedApp {
  try {
    return uWS.SSLApp({ key_file_name: tls.keyFile, cert_file_name: tls.certFile });
  } catch (err) {
    throw new Error(`cannot serve HTTPS with tls.keyFile ${tls.keyFile} and tls.certFile ${tls.certFile} (${(err as Error).message}): they must be readable PEM files, the private key of the certificate`);
  }
}

/**
 * Starts the bid and notice listener on host:port. `/metrics`, `/admin/*`, `/healthz` and `/readyz`
 * are served there to loopback clients only, a request a proxy forwarded not being one (they
 * expose campaign money and control the bidder),
 * or, with `ops`, on a listener of their own (ops.host:ops.port, any client that can reach it),
 * and not at all on the public port. `tls`: PEM key and certificate files to serve HTTPS (uWS
 * SSLApp); absent = plain HTTP.
 *
 * `sharePort`: the worker threads of one `serve --workers N` bind the same ports (SO_REUSEPORT),
 * and the kernel spreads connections over them. Otherwise the ports are bound exclusively: with
 * uWebSockets.js's default, a second bidder process started on a port in use (a stale instance,
 * a deploy with another journal folder) joined it silently, took half the traffic and spent
 * every budget a second time on a ledger of its own.
 */
type ListenWithOptions = (host: string, port: number, options: number, cb: (ls: uWS.us_listen_socket | false) => void) => unknown;
/**
 * The native app's close(): its listen sockets and every connection, at once (the typings do not
 * declare it; uWebSockets.js's Node fallback, used where no binary fits, has none).
 */
type Closable = { close?: () => void };

export function startHttpServer(
  host: string,
  port: number,
  h: HttpHandlers,
  tls?: { keyFile: string; certFile: string },
  ops?: { host: string; port: number },
  o: { sharePort?: boolean } = {},
): Promise<HttpServer> {
  const listenMode = o.sharePort ? 0 : 1; // uWS ListenOptions: LIBUS_LISTEN_DEFAULT, LIBUS_LISTEN_EXCLUSIVE_PORT
  let inFlight = 0;
  // Bid requests and POSTed notices whose headers are read and body is still arriving.
  let reading = 0;
  let draining = false;
  let listenSocket: uWS.us_listen_socket | null = null;
  const app = tls ? sslApp(tls) : uWS.App();
  // A 1 ms tick: while the loop is busy without a wait for I/O, a request read now is charged the
  // time since the last tick (and the hold that tick measured). At 5 ms that charge alone put a
  // loaded bidder's p90 at 5 ms and its p99 past it; the loop already wakes every 1 ms for
  // prom-client's event-loop monitor (metrics.ts EVENT_LOOP_RESOLUTION_MS).
  const lag = createLagClock({ now: h.now, intervalMs: 1 });
  // A listener bound to a loopback address is reached from this host only (a sidecar proxy, a
  // local harness), so an exchange without credentials needs no per-request peer check there:
  // uWS asks the kernel for the peer (getpeername) on every call, ~5 µs of a bid request here.
  // What a proxy on this host forwards is another matter (`forwarded`).
  const localListener = isLoopbackHost(host);
  const secretDigests = new Map<string, Buffer>();
  // Each exchange's allowIps as one matcher, built on first use; a policy reload brings new
  // settings objects, and the old ones' matchers go with them.
  const peerMatchers = new WeakMap<ExchangeSettings, (ip: string) => boolean>();
  const allowedPeer = (ex: ExchangeSettings): ((ip: string) => boolean) => {
    let m = peerMatchers.get(ex);
    if (m === undefined) peerMatchers.set(ex, (m = createIpMatcher(ex.allowIps)));
    return m;
  };

  /** Counts a body as being read (the drain waits for it) until the function it gives is called, once. */
  const readingBody = (): (() => void) => {
    reading++;
    let open = true;
    return () => {
      if (open) {
        open = false;
        reading--;
      }
    };
  };

  /**
   * Writes the answer `p` settles to; one the handler has already sent (a bid, `sendBid`) is not
   * written again: `write` marks the response answered.
   */
  function guard(res: uWS.HttpResponse, state: Aborted, rtb: boolean, p: Promise<Answer>, origin = ''): void {
    inFlight++;
    // Counted down in both handlers rather than in a `finally`: one promise and closure less per request.
    // An answer given while draining closes its connection: the client sends its next request
    // elsewhere rather than on a connection the drain is about to close (see drain).
    p.then(
      (a) => {
        inFlight--;
        write(res, state, a, rtb, draining, origin);
      },
      (err) => {
        inFlight--;
        h.onBug(err);
        write(res, state, INTERNAL_ERROR, rtb, draining, origin);
      },
    );
  }

  /**
   * The pipeline's `send`, called as a method of the request's input. Outside the request handler's
   * synchronous part, so `write` corks; a client gone meanwhile (onAborted) gets nothing.
   */
  function sendBid(this: ServedBid, a: Answer): void {
    write(this.res, this.state, a, true, draining, this.origin);
  }

  function bidRoute(res: uWS.HttpResponse, req: uWS.HttpRequest, exchangeName: string): void {
    // Stage timings count from the read; the deadline and the request's duration from the earliest
    // moment it can have arrived: the read less the time the loop was just held busy while its
    // bytes waited (./arrival.ts).
    const startedMs = h.now();
    const arrivedMs = Math.min(startedMs, lag.arrival());
    const state: Aborted = { aborted: false };
    // While its body arrives a request is in flight too: a drain that did not wait for it closed
    // the connection under it, an answer never sent.
    let doneReading = NOTHING;
    res.onAborted(() => {
      state.aborted = true;
      doneReading();
    });
    const contentType = req.getHeader('content-type');
    const contentEncoding = req.getHeader('content-encoding');
    const version = req.getHeader('x-openrtb-version');
    const contentLength = Number(req.getHeader('content-length') || 0);
    const ex = h.exchange(exchangeName);
    // Headers only an exchange that uses them needs (each read is a call into uWS, ~0.7k instructions).
    const secret = ex?.sharedSecret ? req.getHeader('x-exchange-secret') : '';
    const origin = ex !== undefined && ex.corsOrigins.length !== 0 ? corsOrigin(ex, req.getHeader('origin')) : '';
    // Refused before the pipeline: counted with its refusals, so a wrong secret or a body limit shows on the dashboard.
    // Those that close the connection are `held` (see `write`): written here, in the handler, uWS
    // answered a request pipelined behind them.
    const refuse = (err: BidderError, close = true) => {
      h.onRefused(err.code);
      write(res, state, errorAnswer(err), true, close && 'held', origin);
    };
    if (draining) return refuse(new BidderError('SHUTTING_DOWN'));
    if (!ex) return refuse(new BidderError('UNKNOWN_EXCHANGE', exchangeName), false);
    if (ex.sharedSecret && !sameSecret(secret, ex.sharedSecret, secretDigests)) return refuse(new BidderError('FORBIDDEN'));
    if (ex.allowIps.length) {
      if (!allowedPeer(ex)(Buffer.from(res.getRemoteAddressAsText()).toString())) return refuse(new BidderError('FORBIDDEN'));
    } else if (!ex.sharedSecret && !ex.openToAll) {
      // No credentials configured: a bid request reserves budget, so only this host may send one.
      const viaProxy = forwarded(req);
      if (viaProxy || (!localListener && !isLoopback(res.getRemoteAddress()))) return refuse(new BidderError('FORBIDDEN', viaProxy ? NO_CREDENTIALS_FORWARDED : NO_CREDENTIALS));
    }
    doneReading = readingBody();
    readBody(res, state, h.maxBodyBytes(), Number.isFinite(contentLength) ? contentLength : 0, (body) => {
      doneReading();
      let answer: Answer | Promise<Answer>;
      const input: ServedBid = { body, contentType, contentEncoding, version, exchange: ex, startedMs, arrivedMs, aborted: () => state.aborted, send: sendBid, res, state, origin };
      try {
        answer = h.bid(input);
      } catch (err) {
        answer = Promise.reject(err);
      }
      if (answer instanceof Promise) guard(res, state, true, answer, origin);
      else write(res, state, answer, true, draining && 'held', origin);
    }, origin, () => {
      doneReading();
      h.onRefused('BODY_TOO_LARGE');
    });
  }

  /** CORS preflight for a bid route (a page sending application/json, or extra headers). */
  function preflight(res: uWS.HttpResponse, req: uWS.HttpRequest, exchangeName: string): void {
    const ex = h.exchange(exchangeName);
    const origin = corsOrigin(ex, req.getHeader('origin'));
    const headers = req.getHeader('access-control-request-headers');
    const a: Answer = origin
      ? { status: 204, body: '', headers: { 'access-control-allow-methods': 'POST', 'access-control-max-age': '600', ...(headers ? { 'access-control-allow-headers': headers } : {}) } }
      : notAllowed(ex?.corsOrigins.length ? ALLOW_BID : ALLOW_BID_NO_CORS);
    write(res, { aborted: false, holdBodyless: true }, a, true, false, origin);
  }

  app.post('/openrtb2/bid', (res, req) => bidRoute(res, req, 'default'));
  app.post('/openrtb2/:exchange/bid', (res, req) => bidRoute(res, req, req.getParameter(0) ?? ''));
  app.options('/openrtb2/bid', (res, req) => preflight(res, req, 'default'));
  app.options('/openrtb2/:exchange/bid', (res, req) => preflight(res, req, req.getParameter(0) ?? ''));

  /**
   * A notice: its claims in the query string. A POST is read as the GET (navigator.sendBeacon and
   * some exchanges fire nurl and burl so: refused, a billed impression went unrecorded), its body
   * read (a 413 closes past NOTICE_BODY_BYTES) and ignored.
   */
  const notice = (res: uWS.HttpResponse, req: uWS.HttpRequest, post: boolean) => {
    const state: Aborted = { aborted: false, holdBodyless: true };
    // A POST's body being read counts for the drain as a bid's does: closed under it, a billing
    // notice went unanswered and unrecorded.
    let doneReading = NOTHING;
    res.onAborted(() => {
      state.aborted = true;
      doneReading();
    });
    const kind = req.getParameter(0) as NoticeKind;
    if (!NOTICE_KINDS.has(kind)) return write(res, state, errorAnswer(new BidderError('NOT_FOUND')), false);
    // Chrome's speculative loads send `Sec-Purpose: prefetch`, older browsers and link expanders `Purpose: prefetch`.
    const prefetch = kind === 'click' && (req.getHeader('sec-purpose').startsWith('prefetch') || req.getHeader('purpose') === 'prefetch');
    const query = req.getQuery() ?? '';
    if (!post) return guard(res, state, false, h.notice(kind, query, prefetch));
    doneReading = readingBody();
    const length = Number(req.getHeader('content-length') || 0) || 0;
    readBody(res, state, NOTICE_BODY_BYTES, length, () => (doneReading(), guard(res, state, false, h.notice(kind, query, prefetch))), '', doneReading, false);
  };
  app.get('/notice/:kind', (res, req) => notice(res, req, false));
  app.post('/notice/:kind', (res, req) => notice(res, req, true));
  // Another method is the wrong one (a HEAD from a link checker settles nothing).
  app.any('/notice/:kind', (res, req) => {
    const known = NOTICE_KINDS.has(req.getParameter(0) as NoticeKind);
    write(res, { aborted: false, head: isHead(req) }, known ? notAllowed(ALLOW_NOTICE) : errorAnswer(new BidderError('NOT_FOUND')), false);
  });

  /** The operations routes, on the public app (loopback only) or on an app of their own. */
  function opsRoutes(a: uWS.TemplatedApp, loopbackOnly: boolean): void {
    const local = (res: uWS.HttpResponse, req: uWS.HttpRequest): boolean => {
      if (!loopbackOnly) return true;
      const viaProxy = forwarded(req);
      if (!viaProxy && isLoopback(res.getRemoteAddress())) return true;
      write(res, { aborted: false, head: isHead(req) }, errorAnswer(new BidderError('OPS_LOOPBACK_ONLY', viaProxy ? FORWARDED : undefined)), false);
      return false;
    };
    a.any('/admin/*', (res, req) => {
      if (!local(res, req)) return;
      const state: Aborted = { aborted: false, head: isHead(req) };
      res.onAborted(() => (state.aborted = true));
      const method = req.getMethod().toUpperCase();
      const path = req.getUrl();
      const auth = req.getHeader('authorization');
      readBody(res, state, 64 * 1024, Number(req.getHeader('content-length') || 0), (body) => guard(res, state, false, h.admin(method, path, auth, body)), '', undefined, false);
    });
    const metrics = (res: uWS.HttpResponse, req: uWS.HttpRequest) => {
      if (!local(res, req)) return;
      const state: Aborted = { aborted: false, head: isHead(req) };
      res.onAborted(() => (state.aborted = true));
      // Read here: uWS's request is gone once the handler returns.
      const gzip = acceptsGzip(req.getHeader('accept-encoding'));
      guard(res, state, false, h.metrics().then((a) => (gzip ? gzipped(a) : varies(a))));
    };
    a.get('/metrics', metrics);
    a.head('/metrics', metrics);
  }
  // Health answers anyone on the public port: load balancers probe it.
  function healthRoutes(a: uWS.TemplatedApp): void {
    // HEAD as GET without the body (RFC 9110 §9.3.2): load balancers probe with either.
    const healthz = (res: uWS.HttpResponse, req: uWS.HttpRequest) => write(res, { aborted: false, head: isHead(req) }, h.healthz(), false);
    const readyz = (res: uWS.HttpResponse, req: uWS.HttpRequest) => {
      const state: Aborted = { aborted: false, head: isHead(req) };
      res.onAborted(() => (state.aborted = true));
      if (draining) return write(res, state, errorAnswer(new BidderError('SHUTTING_DOWN')), false);
      guard(res, state, false, h.readyz());
    };
    a.get('/healthz', healthz);
    a.head('/healthz', healthz);
    a.get('/readyz', readyz);
    a.head('/readyz', readyz);
  }
  healthRoutes(app);
  const opsApp = ops ? uWS.App() : null;
  if (opsApp) {
    opsRoutes(opsApp, false);
    healthRoutes(opsApp);
    opsApp.any('/*', (res, req) => write(res, { aborted: false, head: isHead(req) }, errorAnswer(new BidderError('NOT_FOUND')), false));
  } else opsRoutes(app, true);
  // 405 on the bid routes only: any other path under /openrtb2/ (Prebid Server's /openrtb2/auction,
  // a trailing slash) is a wrong URL, and a 405 there sent integrators looking at their method.
  // Allow names OPTIONS where the exchange answers a preflight (RFC 9110 §15.5.6: a 405 lists the methods).
  const wrongMethod = (res: uWS.HttpResponse, req: uWS.HttpRequest, exchangeName: string) =>
    write(res, { aborted: false, head: isHead(req) }, notAllowed(h.exchange(exchangeName)?.corsOrigins.length ? ALLOW_BID : ALLOW_BID_NO_CORS), true);
  app.any('/openrtb2/bid', (res, req) => wrongMethod(res, req, 'default'));
  app.any('/openrtb2/:exchange/bid', (res, req) => wrongMethod(res, req, req.getParameter(0) ?? ''));
  app.any('/*', (res, req) => write(res, { aborted: false, head: isHead(req) }, errorAnswer(new BidderError('NOT_FOUND')), false));

  let opsSocket: uWS.us_listen_socket | null = null;
  return new Promise((resolve, reject) => {
    // The (host, port, options, cb) form, which the bundled typings do not declare.
    (app as unknown as { listen: ListenWithOptions }).listen(host, port, listenMode, (ls) => {
      if (!ls) {
        lag.stop();
        return reject(new Error(`cannot listen on ${host}:${port} (address in use or not permitted)`));
      }
      listenSocket = ls;
      if (opsApp && ops) {
        (opsApp as unknown as { listen: ListenWithOptions }).listen(ops.host, ops.port, listenMode, (os) => {
          opsSocket = os || null;
        });
        if (!opsSocket) {
          uWS.us_listen_socket_close(ls);
          lag.stop();
          return reject(new Error(`cannot listen on ${ops.host}:${ops.port} for metrics and admin (opsHost, opsPort: address in use or not permitted)`));
        }
      }
      resolve({
        port: uWS.us_socket_local_port(ls),
        opsPort: opsSocket ? uWS.us_socket_local_port(opsSocket) : undefined,
        inFlight: () => inFlight,
        async drain(graceMs) {
          draining = true;
          if (listenSocket) uWS.us_listen_socket_close(listenSocket);
          listenSocket = null;
          if (opsSocket) uWS.us_listen_socket_close(opsSocket);
          opsSocket = null;
          const until = h.now() + graceMs;
          while ((inFlight > 0 || reading > 0) && h.now() < until) await new Promise((r) => setTimeout(r, 5));
          // Then the connections still open: kept-alive ones between requests (an exchange's always
          // are), and those whose request outlived the grace (aborted: its answer is not written).
          // Left open, a worker thread of `serve --workers` ended with their handles on its loop,
          // and Node aborted the whole process (uv_loop_close() while having open handles).
          (app as unknown as Closable).close?.();
          (opsApp as unknown as Closable | null)?.close?.();
          lag.stop();
        },
      });
    });
  });
}

const FORWARDED = 'a proxy forwarded this request (Forwarded, X-Forwarded-For or X-Real-IP), so it is no loopback client';
const NO_CREDENTIALS = 'this exchange has no sharedSecret or allowIps and answers loopback only';
const NO_CREDENTIALS_FORWARDED = `${NO_CREDENTIALS}; ${FORWARDED}`;

/**
 * Whether a proxy says it forwarded the request. Its socket peer is then the proxy, loopback for
 * one on this host, and not the client: read as loopback, every client on the internet was
 * (credential-less exchanges bid for it, /metrics and /admin answered it). Asked only where a
 * loopback rule applies, ~60 ns a header. A proxy that says none of these is not seen: one
 * exposed to others must be given exchange credentials and an opsPort (docs/operations.md).
 */
function forwarded(req: uWS.HttpRequest): boolean {
  return req.getHeader('x-forwarded-for') !== '' || req.getHeader('forwarded') !== '' || req.getHeader('x-real-ip') !== '';
}

/**
 * A loopback peer (127/8, ::1, IPv4-mapped 127/8), from the binary address uWS gives (4 bytes for
 * IPv4, 16 for IPv6). Read from the bytes: the text form and a BlockList check built a Buffer, a
 * string and a native SocketAddress on every bid request of an exchange without credentials.
 */
export function isLoopback(address: ArrayBuffer): boolean {
  const a = new Uint8Array(address);
  if (a.length === 4) return a[0] === 127;
  if (a.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (a[i] !== 0) return false;
  if (a[10] === 0xff && a[11] === 0xff) return a[12] === 127;
  return a[10] === 0 && a[11] === 0 && a[12] === 0 && a[13] === 0 && a[14] === 0 && a[15] === 1;
}

/** Whether a listen address is a loopback IP literal (127.0.0.0/8, ::1, IPv4-mapped 127/8); a name such as `localhost` is not trusted to be one. */
export const isLoopbackHost = createIpMatcher(['127.0.0.0/8', '::1']);

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * Constant-time comparison that does not leak the secret's length either (both sides hashed
 * first). `digests` keeps each configured secret's digest, computed once (a server's policies
 * hold a handful).
 */
function sameSecret(given: string, want: string, digests: Map<string, Buffer>): boolean {
  let w = digests.get(want);
  if (w === undefined) digests.set(want, (w = sha256(want)));
  return timingSafeEqual(sha256(given), w);
}
