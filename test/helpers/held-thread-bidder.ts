import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * The built bidder in a child process whose one libuv thread is held by an open of a FIFO no one
 * writes: anything left to the thread pool (an asynchronous file write, the journal's fdatasync)
 * never happens before a kill, so what is on disk is exactly what reached the kernel on the main
 * thread, as when a slow disk's sync is interrupted.
 */
const CHILD = `
import { execFileSync } from 'node:child_process';
import { open } from 'node:fs';
const { createBidder } = await import(process.env.BIDDER_MODULE);
const o = JSON.parse(process.env.BIDDER_OVERRIDES);
const b = await createBidder({ policiesDir: o.policiesDir, watchModels: false, overrides: o.overrides });
execFileSync('mkfifo', [o.fifo]);
open(o.fifo, 'r', () => {});
await new Promise((r) => setTimeout(r, 50));
process.send({ url: b.url });
`;

export interface HeldThreadBidder {
  child: ChildProcess;
  /** Settles when the child has exited. */
  exited: Promise<unknown>;
  /** Settles with the bidder's URL once it listens and its thread is held; rejects if it exits first. */
  listening: Promise<{ url: string }>;
  /** The copy of `policies/` the child serves, for a restart in this process. */
  policiesDir: string;
}

/** Starts the child in `dir` (a fresh temporary folder the caller removes) with `overrides`. */
export function startHeldThreadBidder(dir: string, overrides: Record<string, unknown>): HeldThreadBidder {
  if (!existsSync('dist/bidder.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
  const policiesDir = join(dir, 'policies');
  cpSync('policies', policiesDir, { recursive: true });
  writeFileSync(join(dir, 'child.mjs'), CHILD);
  const child = fork(join(dir, 'child.mjs'), [], {
    env: { ...process.env, UV_THREADPOOL_SIZE: '1', BIDDER_MODULE: pathToFileURL(resolve('dist/bidder.js')).href, BIDDER_OVERRIDES: JSON.stringify({ policiesDir, overrides, fifo: join(dir, 'hold') }) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const exited = new Promise((r) => child.once('exit', r));
  const listening = new Promise<{ url: string }>((res, rej) => {
    child.once('message', (m) => res(m as { url: string }));
    child.once('exit', (code) => rej(new Error(`the bidder exited (${code}) before listening`)));
  });
  return { child, exited, listening, policiesDir };
}

/** A notice line of the event log, as the kill-9 suites read it. */
export interface LoggedNotice {
  type: string;
  bidId: string;
  priceCpmUsd?: number;
}

/** The win lines of `bidId` in the event log folder `events` (none where it does not exist yet). */
export function loggedWins(events: string, bidId: string): LoggedNotice[] {
  if (!existsSync(events)) return [];
  return readdirSync(events, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.ndjson'))
    .flatMap((f) => readFileSync(join(events, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as LoggedNotice))
    .filter((r) => r.type === 'win' && r.bidId === bidId);
}

/** The first bid of up to 20 plain banner requests to the bidder at `url`. */
export async function firstBid(url: string): Promise<{ id: string; price: number; nurl: string } | undefined> {
  for (let i = 0; i < 20; i++) {
    const body = { id: `k${i}`, at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] }, user: { id: `u${i}` } };
    const r = await fetch(url + '/openrtb2/bid', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    if (r.status === 200) return (await r.json()).seatbid[0].bid[0];
  }
  return undefined;
}
