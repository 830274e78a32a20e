import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBidder, type Bidder } from '../src/bidder.js';
import type { Settings } from '../src/config/settings.js';
import { freePort } from '../src/harness/process.js';
import { metricSum } from '../src/harness/prometheus.js';
import { noticeKeyId } from '../src/fleet/notice-keys.js';
import { haveRedisServer, startPrivateRedis } from '../src/harness/redis.js';
import { connectRedis, describeWithRedis, dropKeysAndQuit, REDIS_URL } from './helpers/redis.js';
import { startWorkers } from './helpers/workers.js';

/**
 * The fleet check of notice keys through real bidders sharing a Redis ledger. Before it, `serve`
 * with a NOTICE_SECRET other than its running sibling's started and served: each refused the
 * other's win and billing notices as forged (403: billed, never recorded), and neither said so at
 * start, in a log or in a metric. Against a real Redis (a database of 10-15, a key prefix of this
 * run); in CI (CI=true) an unreachable Redis fails the run, elsewhere the suite is skipped.
 */
const OLD = 'fleet-old-secret-0123456789';
const OTHER = 'fleet-other-secret-5555555555';

const base = REDIS_URL.replace(/\/\d+$/, '');
const url = `${base}/${10 + (process.pid % 6)}`;
const client = await connectRedis(url);
const keyPrefix = `test:fleet-nk-bidder:${process.pid}:${Date.now().toString(36)}:`;

describeWithRedis('fleet notice keys through the bidder', url, client, () => {
  describe('fleet notice keys through the bidder', () => {
    let policiesDir = '';
    let dir = '';
    let first: Bidder | undefined;
    const overrides = (name: string, secret: string): Partial<Settings> => ({
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      noticeSecret: secret,
      seed: 'test',
      // The heartbeat follows fleetSyncMs.
      fleetSyncMs: 200,
      eventLog: { dir: join(dir, name, 'events'), rotateBytes: 1 << 20, enabled: true } as Settings['eventLog'],
      ledger: { journalPath: join(dir, name, 'ledger'), redisUrl: url, keyPrefix, commandTimeoutMs: 2000 } as Settings['ledger'],
      ...(process.env.TEST_MODELS_DIR ? { modelsDir: process.env.TEST_MODELS_DIR } : {}),
    });
    const start = (name: string, secret: string) => createBidder({ policiesDir, watchModels: false, logger: pino({ level: 'silent' }), overrides: overrides(name, secret) });
    // NaN where the bidder exports no such gauge.
    const gauge = async (b: Bidder) => {
      const text = await b.metricsText();
      return /^bidder_fleet_notice_key_mismatch /m.test(text) ? metricSum(text, 'bidder_fleet_notice_key_mismatch') : NaN;
    };
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'fleet-notice-keys-'));
      policiesDir = join(dir, 'policies');
      cpSync('policies', policiesDir, { recursive: true });
      // A `serve` process reads its journal, event log and key prefix from bidder.yaml.
      const yaml = join(policiesDir, 'bidder.yaml');
      writeFileSync(
        yaml,
        readFileSync(yaml, 'utf8')
          .replace(/^(\s*)journalPath: .*$/m, `$1journalPath: ${join(dir, 'cli', 'ledger')}\n$1keyPrefix: "${keyPrefix}"`)
          .replace(/^(\s*)dir: var\/events$/m, `$1dir: ${join(dir, 'cli', 'events')}`),
      );
      // On the real clock, as the CLI's: the test bidders' fixed clock would not matter to the
      // leases (Redis's), but budgets and notices are compared with the CLI's.
      first = await start('first', OLD);
    });
    afterAll(async () => {
      await first?.close();
      await dropKeysAndQuit(client, keyPrefix);
      rmSync(dir, { recursive: true, force: true });
    });

    it('a second bidder with the same secret starts, and neither shows a mismatch', async () => {
      const second = await start('second', OLD);
      try {
        await sleep(500);
        // Both bidders of this test process write its one entry (host:pid), and each reads the fleet as agreeing.
        expect(await client.hlen(`${keyPrefix}nk`)).toBe(1);
        expect(await gauge(first!)).toBe(0);
        expect(await gauge(second)).toBe(0);
      } finally {
        await second.close();
      }
    });

    it('`serve --workers 2` with the same secret starts: its workers do not trip on each other', async () => {
      const workers = await startWorkers({ policiesDir, redisUrl: url, port: await freePort(), env: { ...process.env, NOTICE_SECRET: OLD } });
      try {
        await sleep(500);
        // One entry for the workers' process, written by each (alike), agreeing with the first's.
        expect(await client.hlen(`${keyPrefix}nk`)).toBe(2);
        expect(await gauge(first!)).toBe(0);
        expect(workers.stderr()).not.toMatch(/notice keys/);
      } finally {
        await workers.stop();
      }
    }, 90_000);

    it('`serve` with another secret stops with exit 2 and one message, and the first shows the mismatch', async () => {
      const child = spawn(process.execPath, ['dist/cli.js', 'serve', '--policies', policiesDir, '--redis', url, '--host', '127.0.0.1', '--port', '0', '--log-level', 'silent'], {
        env: { ...process.env, NOTICE_SECRET: OTHER },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      // One that starts serves until stopped: it is given a minute (the model loads first).
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      const code = await Promise.race([exited, sleep(60_000).then(() => 'still serving after 60 s')]);
      if (code === 'still serving after 60 s') {
        child.kill('SIGTERM');
        await exited;
      }
      expect(code, stderr).toBe(2);
      expect(stderr).toMatch(/^bidder: invalid policies \(1 problem\):\n {2}- the notice secret \(NOTICE_SECRET \/ noticeSecret, with noticeSecretPrevious\) disagrees with 1 running process of the fleet/);
      expect(stderr).toContain('docs/money.md, "Rotating the notice secret"');
      // Refused after waiting one of its heartbeats (fleetSyncMs, 5 s) in which the first renewed its entry.
      expect(stderr).toContain(`the disagreeing process signs with ${noticeKeyId(OLD)} (1 process); 0 serving processes agree with this one`);
      expect(stderr).not.toContain(OTHER);
      // Its entry, marked refused, lasts its lease (3 x its fleetSyncMs, 5 s): the first's next heartbeat (200 ms) counts it.
      await sleep(250);
      expect(await gauge(first!)).toBe(1);
    }, 90_000);

    it('a bidder starting while Redis stalls its writes waits for it, then serves', async () => {
      // Before, the check's one script timed out after ledger.commandTimeoutMs and the start failed
      // ("bidder: cannot start: Command timed out", exit 1), where the budget rules write, the first
      // write at start until then, tries again. On a private redis-server: never pause the shared one.
      expect(haveRedisServer() || process.env.CI !== 'true', 'redis-server is not on the PATH').toBe(true);
      if (!haveRedisServer()) return;
      const server = await startPrivateRedis();
      const admin = new Redis(server.url, { maxRetriesPerRequest: 0 });
      let stalled: Bidder | undefined;
      try {
        await admin.call('CLIENT', 'PAUSE', '3000', 'WRITE');
        const o = overrides('stalled', OLD);
        stalled = await createBidder({ policiesDir, watchModels: false, logger: pino({ level: 'silent' }), overrides: { ...o, ledger: { ...o.ledger, redisUrl: `${server.url}/10`, commandTimeoutMs: 100 } } });
        expect(await admin.select(10).then(() => admin.hlen(`${keyPrefix}nk`))).toBe(1);
        expect(await gauge(stalled)).toBe(0);
      } finally {
        await stalled?.close();
        admin.disconnect();
        await server.stop();
      }
    }, 60_000);
  });
});
