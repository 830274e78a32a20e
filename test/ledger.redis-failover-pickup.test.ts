import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Redis } from 'ioredis';
import { expect, it } from 'vitest';
import { startPrivateRedis } from '../src/harness/redis.js';
import { startBidder } from './helpers/bidder.js';

/**
 * A failover behind an address that follows the primary late (fix review fixreve): the READONLY
 * that dropped the connection led back to the old primary, now a replica, whose READONLY within
 * the second was refused a reconnect; the next one waited for a command failing a second later
 * (bids every 20 ms, address 300 ms late: first bid answered 1,232 ms after the switch, 56 refused)
 * or, idle, for the rules' renewal (20 s). Now that READONLY sets a reconnect for the second's end:
 * a bidder idle since moves on its own, and its first bid after is answered.
 */
const req = (id: string) => ({ id, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's', cat: ['IAB12'] } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('after a failover the address follows late, a bidder idle since reconnects to the new primary on its own', async () => {
  const a = await startPrivateRedis();
  const b = await startPrivateRedis();
  let target = a.port;
  const socks = new Set<net.Socket>();
  // The address: new connections go to `target`, open ones stay where they are.
  const proxy = net.createServer((c) => {
    const u = net.connect(target, '127.0.0.1');
    socks.add(c);
    socks.add(u);
    c.pipe(u);
    u.pipe(c);
    const end = () => {
      c.destroy();
      u.destroy();
    };
    for (const s of [c, u]) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  const port = (proxy.address() as net.AddressInfo).port;
  const adminA = new Redis(a.url);
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } }));
  const data = mkdtempSync(join(tmpdir(), 'failover-pickup-'));
  const t = await startBidder({ ledger: { journalPath: data, redisUrl: `redis://127.0.0.1:${port}`, commandTimeoutMs: 500 } as never }, 'policies', { logger });
  const msgs = () => lines.map((l) => JSON.parse(l).msg as string);
  try {
    expect((await t.bid(req('pk-0'))).status).toBe(200);
    await adminA.replicaof('127.0.0.1', b.port);
    // READONLY: reconnected, to the replica still; its renewal meets READONLY within the second.
    expect((await t.bid(req('pk-1'))).status).not.toBe(200);
    for (let i = 0; i < 100 && !msgs().includes('Redis ledger: could not renew the budget rules'); i++) await sleep(20);
    target = b.port;
    // No command from here: only a reconnect set at the READONLY moves the bidder.
    for (let i = 0; i < 150 && !msgs().includes('Redis ledger: the budget rules are renewed again'); i++) await sleep(20);
    expect(msgs()).toContain('Redis ledger: the budget rules are renewed again');
    expect((await t.bid(req('pk-2'))).status).toBe(200);
  } finally {
    await t.close();
    adminA.disconnect();
    proxy.close();
    for (const s of socks) s.destroy();
    await a.stop();
    await b.stop();
    rmSync(data, { recursive: true, force: true });
  }
}, 60_000);
