import { spawn, type ChildProcess } from 'node:child_process';

/** A `bidder serve --workers N` process of the real CLI, listening. */
export interface Workers {
  child: ChildProcess;
  /** Its stderr so far. */
  stderr(): string;
  /** SIGTERM, and its exit (nothing if it has exited already). */
  stop(): Promise<void>;
}

/**
 * Starts `serve --workers` (2 unless said) on 127.0.0.1 with `policiesDir`, the Redis at
 * `redisUrl` and `port` (none: the port bidder.yaml names), logging warnings and up; resolves once
 * it says its workers listen, throws with its stderr if it exits first or takes a minute.
 */
export async function startWorkers(o: { policiesDir: string; redisUrl: string; port?: number; env: NodeJS.ProcessEnv; workers?: number }): Promise<Workers> {
  const port = o.port === undefined ? [] : ['--port', String(o.port)];
  const child = spawn(process.execPath, ['dist/cli.js', 'serve', '--workers', String(o.workers ?? 2), '--policies', o.policiesDir, '--redis', o.redisUrl, ...port, '--host', '127.0.0.1', '--log-level', 'warn'], {
    env: o.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  for (let i = 0; !/workers listening/.test(err); i++) {
    if (child.exitCode !== null || i > 600) {
      await stop();
      throw new Error(`workers did not start: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, stderr: () => err, stop };
}
