import { EventEmitter } from 'node:events';
import { describe, expect, it, vi } from 'vitest';

/**
 * The main thread's admin lock (src/cli/workers.ts) with worker threads that exit: a fake Worker
 * stands in for node:worker_threads, so the main thread's side is driven message by message.
 * Before: a worker that exited while queued was later granted the lock and never gave it back,
 * and a fan-out to an exited worker never finished; every later admin action then hung.
 */
const made: FakeWorker[] = [];
class FakeWorker extends EventEmitter {
  sent: Array<{ type: string; id?: number }> = [];
  dead = false;
  constructor() {
    super();
    made.push(this);
    setImmediate(() => this.emit('message', { type: 'listening', port: 1234 }));
  }
  postMessage(m: { type: string; id?: number }) {
    if (!this.dead) this.sent.push(m);
  }
  terminate() {}
}
vi.mock('node:worker_threads', () => ({ Worker: FakeWorker }));

const tick = () => new Promise((r) => setTimeout(r, 10));
const got = (w: FakeWorker, type: string) => w.sent.some((m) => m.type === type);

describe('the admin lock across workers', () => {
  it('passes over a worker that exited while waiting for it, and answers for one a fan-out was sent to', async () => {
    const { runWorkers } = await import('../src/cli/workers.js');
    await runWorkers(3, '/nonexistent', { settings: { modelsDir: '/nonexistent/models' } } as never, { port: 1234 }, () => {});
    const [a, b, c] = made;
    a.emit('message', { type: 'lock', id: 1 });
    await tick();
    expect(got(a, 'locked')).toBe(true);
    b.emit('message', { type: 'lock', id: 2 });
    await tick();
    // b exits while queued; a fans a pause out to b and c.
    a.emit('message', { type: 'fanout', id: 3, action: { kind: 'pause', campaignId: 'x', paused: true } });
    await tick();
    b.dead = true;
    b.emit('exit', 1);
    const apply = c.sent.find((m) => m.type === 'apply')!;
    c.emit('message', { type: 'applied', id: apply.id, result: { ok: true } });
    await tick();
    expect(got(a, 'fanned')).toBe(true);
    a.emit('message', { type: 'unlock' });
    c.emit('message', { type: 'lock', id: 4 });
    await tick();
    expect(got(c, 'locked')).toBe(true);
  });
});
