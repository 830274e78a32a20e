import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Redis, type RedisOptions } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startPrivateRedis } from '../src/harness/redis.js';
import { reconnectOnReadonly } from '../src/ledger/redis.js';
import { startBidder } from './helpers/bidder.js';

/**
 * A failover whose address still leads to the old primary, now a replica (a DNS TTL not yet out):
 * each READONLY dropped the connection, the new one went to the same replica, the budget rules
 * written on 'ready' met READONLY and dropped it again (fix review fixrevc: idle 5 s, 8 new
 * connections and 11 "could not renew the budget rules" warnings; 100 bids over 2 s, 17 and 17).
 * A client now reconnects on READONLY at most once a second, and the failed renewal is said once.
 */
const req = (id: string) => ({ id, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's', cat: ['IAB12'] } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const connections = async (c: Redis) => Number(/total_connections_received:(\d+)/.exec(await c.info('stats'))![1]);

describe('Redis ledger on an address that stays a replica', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reconnects on READONLY at most once a second, each client on its own; one within that second reconnects when it ends', () => {
    vi.useFakeTimers({ toFake: ['performance', 'setTimeout', 'clearTimeout'] });
    const readonly = new Error("READONLY You can't write against a read only replica.");
    const fake = () => {
      const c = Object.assign(new EventEmitter(), { options: {} as RedisOptions, status: 'ready', reconnects: 0 });
      (c as unknown as { disconnect: () => void }).disconnect = () => c.reconnects++;
      reconnectOnReadonly(c as unknown as Redis);
      return c;
    };
    const a = fake();
    const b = fake();
    const onError = (c: ReturnType<typeof fake>, err: Error) => c.options.reconnectOnError!(err);
    expect(onError(a, new Error('ERR something else'))).toBe(false);
    expect(onError(a, readonly)).toBe(1);
    a.emit('ready');
    // The new connection still on the replica: refused, and one reconnect set for the second's end.
    expect(onError(a, readonly)).toBe(false);
    expect(onError(a, readonly)).toBe(false);
    expect(onError(b, readonly)).toBe(1);
    vi.advanceTimersByTime(999);
    expect(a.reconnects).toBe(0);
    vi.advanceTimersByTime(1);
    expect(a.reconnects).toBe(1);
    // That reconnect counts toward the limit.
    a.emit('ready');
    expect(onError(a, readonly)).toBe(false);
    // A connection replaced since (ready again) drops no set reconnect; nor does one that ended.
    a.emit('ready');
    vi.advanceTimersByTime(1_000);
    expect(a.reconnects).toBe(1);
    expect(onError(a, readonly)).toBe(1);
    a.emit('ready');
    expect(onError(a, readonly)).toBe(false);
    a.emit('end');
    vi.advanceTimersByTime(1_000);
    expect(a.reconnects).toBe(1);
    expect(b.reconnects).toBe(0);
  });

  it('a bidder left on the replica neither reconnects in a loop nor repeats its renewal warning', async () => {
    const a = await startPrivateRedis();
    const b = await startPrivateRedis();
    const adminA = new Redis(a.url);
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } }));
    const data = mkdtempSync(join(tmpdir(), 'readonly-loop-'));
    const t = await startBidder({ ledger: { journalPath: data, redisUrl: a.url, commandTimeoutMs: 500 } as never }, 'policies', { logger });
    try {
      expect((await t.bid(req('ro-0'))).status).toBe(200);
      await adminA.replicaof('127.0.0.1', b.port);
      await sleep(200);
      const busy0 = await connections(adminA);
      const start = performance.now();
      const statuses = new Set<number>();
      for (let i = 0; i < 60; i++) {
        statuses.add((await t.bid(req(`ro-${i + 1}`))).status);
        await sleep(20);
      }
      const seconds = (performance.now() - start) / 1000;
      const busy = (await connections(adminA)) - busy0;
      // Idle, nothing writes but a reconnect's renewal of the rules: the loop, if any, goes on.
      await sleep(500);
      const idle0 = await connections(adminA);
      await sleep(3_000);
      const idle = (await connections(adminA)) - idle0;
      const renewals = lines.filter((l) => JSON.parse(l).msg === 'Redis ledger: could not renew the budget rules').length;
      console.log(`${busy} new connections in ${seconds.toFixed(1)} s of bids (statuses ${[...statuses]}), ${idle} in 3 s idle after; ${renewals} renewal warnings`);
      expect([...statuses]).not.toContain(200);
      // Every bid's reservation meets READONLY: one reconnect a second at most.
      expect(busy).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
      expect(idle).toBeLessThanOrEqual(3 + 1);
      expect(renewals).toBeLessThanOrEqual(1);
    } finally {
      await t.close();
      adminA.disconnect();
      await a.stop();
      await b.stop();
      rmSync(data, { recursive: true, force: true });
    }
  }, 60_000);
});
