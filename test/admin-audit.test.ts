import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createAdmin } from '../src/admin/admin.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * Admin refusals (401) were not counted in bidder_request_errors_total{code="ADMIN_UNAUTHORIZED"}
 * (only bid routes fed it), and no admin action left a log line: who paused a campaign, or swapped
 * the model, could not be told afterwards, nor that a client kept sending a wrong token.
 */
const TOKEN = 'admin-audit-token-0123';

type Line = { level: number; msg: string; [k: string]: unknown };
function capture() {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  return { lines, logger: pino({ level: 'info' }, stream) };
}
const WARN = 40;
const INFO = 30;

describe('admin refusals and actions, on the real bidder', () => {
  let t: TestBidder;
  const log = capture();
  beforeAll(async () => {
    t = await startBidder({ adminToken: TOKEN }, 'policies', { logger: log.logger });
  });
  afterAll(() => t.close());
  const admin = (path: string, authorization = `Bearer ${TOKEN}`, body = '') => t.post(path, body, { authorization });
  const adminLines = () => log.lines.filter((l) => l.msg.startsWith('admin'));

  it('counts each 401 in bidder_request_errors_total and logs them once, with a count', async () => {
    for (const auth of ['Bearer wrong', '', `Bearer ${TOKEN}x`]) expect((await admin('/admin/campaigns/acme-shoes/pause', auth)).status).toBe(401);
    expect(await t.metric('bidder_request_errors_total', { code: 'ADMIN_UNAUTHORIZED' })).toBe(3);
    const refusals = log.lines.filter((l) => l.level === WARN && /refused/.test(l.msg));
    expect(refusals).toEqual([expect.objectContaining({ refused: 1 })]);
  });

  it('logs every admin action at info: what, on which campaign or version, and the result', async () => {
    log.lines.length = 0;
    expect((await admin('/admin/campaigns/acme-shoes/pause')).status).toBe(200);
    expect((await admin('/admin/campaigns/acme-shoes/resume')).status).toBe(200);
    expect((await admin('/admin/campaigns/nope/pause')).status).toBe(404);
    expect((await admin('/admin/reload/policies')).status).toBe(200);
    expect((await admin('/admin/reload/model', undefined, JSON.stringify({ version: 'lr-v2' }))).status).toBe(200);
    expect((await admin('/admin/reload/model', undefined, JSON.stringify({ version: 'no-such-version' }))).status).toBe(409);
    // Reading the status changes nothing: not an action.
    expect((await fetch(`${t.url}/admin/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    const lines = adminLines();
    expect(lines.every((l) => l.level === INFO)).toBe(true);
    expect(lines.map(({ action, campaign, version, result }) => ({ action, campaign, version, result }))).toEqual([
      { action: 'pause', campaign: 'acme-shoes', version: undefined, result: 'ok' },
      { action: 'resume', campaign: 'acme-shoes', version: undefined, result: 'ok' },
      { action: 'pause', campaign: 'nope', version: undefined, result: 'unknown campaign' },
      { action: 'reload policies', campaign: undefined, version: undefined, result: 'ok' },
      { action: 'reload model', campaign: undefined, version: 'lr-v2', result: 'ok' },
      { action: 'reload model', campaign: undefined, version: 'no-such-version', result: 'refused' },
    ]);
    expect(lines[5].problems).toEqual([expect.stringContaining('no-such-version')]);
  });
});

describe('401s in the log', () => {
  afterEach(() => vi.useRealTimers());

  it('at most one line a minute, each with the number refused since the last', async () => {
    vi.useFakeTimers();
    const log = capture();
    const refused: string[] = [];
    const handle = createAdmin({
      token: TOKEN,
      reloadPolicies: async () => ({ ok: false, problems: [] }),
      reloadModel: async () => ({ ok: false, problems: [] }),
      pause: async () => ({ ok: true }),
      status: () => ({}),
      onRefused: (code) => refused.push(code),
      logger: log.logger,
    });
    const wrong = () => handle('GET', '/admin/status', 'Bearer nope', Buffer.alloc(0));
    const warned = () => log.lines.filter((l) => l.level === WARN).map((l) => l.refused);
    for (let i = 0; i < 5; i++) expect((await wrong()).status).toBe(401);
    expect(warned()).toEqual([1]);
    vi.advanceTimersByTime(60_000);
    expect(warned()).toEqual([1, 4]);
    // A quiet minute: no line, and the next refusal is logged at once.
    vi.advanceTimersByTime(120_000);
    expect(warned()).toEqual([1, 4]);
    await wrong();
    expect(warned()).toEqual([1, 4, 1]);
    expect(refused).toEqual(Array(6).fill('ADMIN_UNAUTHORIZED'));
  });
});
