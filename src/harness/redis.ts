import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, sleep } from './process.js';

/**
 * A private redis-server for tests, load tests and fleet simulations: a free port on 127.0.0.1, a
 * temporary directory, never the machine's shared Redis. With `appendonly` the data survives a
 * SIGKILL and `restart()` (a crash test); without it nothing is written to disk.
 */
export interface PrivateRedis {
  url: string;
  port: number;
  dir: string;
  /** SIGKILL, then start again on the same port and files; `args` replace the options' `args` from then on. */
  restart(args?: string[]): Promise<void>;
  /** SIGKILL, without starting again. */
  kill(): Promise<void>;
  /** Start again after `kill()`. */
  start(): Promise<void>;
  /** Kill and remove the directory. */
  stop(): Promise<void>;
}

export interface PrivateRedisOptions {
  /** Append-only file with fsync on every write (default false: memory only). */
  appendonly?: boolean;
  /** More redis-server arguments, e.g. `['--maxmemory', '100mb', '--maxmemory-policy', 'volatile-lru']`. */
  args?: string[];
  /** How long to wait for the first PONG (default 10 s). */
  startTimeoutMs?: number;
  log?: (line: string) => void;
}

/** Whether `redis-server` is on the PATH. */
export function haveRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export async function startPrivateRedis(o: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'bidder-redis-'));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const persistence = o.appendonly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const deadline = o.startTimeoutMs ?? 10_000;
  let child: ChildProcess | undefined;
  let extra = o.args ?? [];
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, ...persistence, '--save', '', ...extra], { stdio: 'ignore' });
    const exited = new Promise<never>((_, reject) => child!.once('exit', (code) => reject(new Error(`redis-server on port ${port} exited (${code}) before answering`))));
    exited.catch(() => {});
    const t0 = Date.now();
    for (;;) {
      if (await answersPing(port)) return;
      if (child.exitCode !== null) await exited;
      if (Date.now() - t0 > deadline) throw new Error(`redis-server on port ${port} did not answer within ${deadline} ms`);
      await sleep(50);
    }
  };
  const kill = () =>
    new Promise<void>((resolve) => {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return resolve();
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  try {
    await start();
  } catch (err) {
    await kill();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  o.log?.(`private redis-server on ${port}${o.appendonly ? ' (AOF, appendfsync always)' : ''}`);
  return {
    url,
    port,
    dir,
    start,
    kill,
    async restart(args) {
      if (args !== undefined) extra = args;
      await kill();
      o.log?.('redis-server killed (SIGKILL); restarting on the same files');
      await start();
    },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Whether the server on `port` answers PING with PONG (not LOADING, nor a refused connection),
 * over a plain socket. It was an ioredis client with no retries (`retryStrategy: () => null`, the
 * only one in this harness), whose close flushes its queue as 'Connection is closed.': vitest's
 * worker running test/redis-failure.test.ts exited in two CI runs on that error unhandled, from
 * ioredis's close handler with no frame of ours (the wasm backend's emscripten listeners throw any
 * unhandled rejection). This probe, run around every kill and restart there, is the suspect; not
 * reproduced outside CI (20 local runs), so not confirmed.
 */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/** Delete every key under `prefix` (what one run created); the connection stays open. */
export async function dropKeys(client: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) await client.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}
