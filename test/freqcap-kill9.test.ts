import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NBR } from '../src/errors/codes.js';
import { spawnBidder, type SpawnedBidder } from '../src/harness/bidder.js';
import { sleep } from '../src/harness/process.js';
import { pacedPolicies } from './helpers/pacing-policies.js';

/**
 * A bidder alone wrote its frequency caps (freqcaps.json) only at shutdown: after a kill -9 and a
 * restart, a user capped at 1 impression a day who had won was bid on again (200, where a SIGTERM
 * kept the 204). Now the caps are written every `frequencySaveMs` too: past one write, the kill
 * keeps the cap.
 */

const SECRET = 'freqcap-kill9-secret-0123456789abcdef';
const request = (id: string, user: string) => ({ id, at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] }, user: { id: user, buyeruid: user } });

describe('frequency caps across a kill -9 (a bidder alone)', () => {
  const parent = mkdtempSync(join(tmpdir(), 'freqcap-kill9-'));
  const running: SpawnedBidder[] = [];
  afterAll(async () => {
    for (const b of running) if (b.child.exitCode === null && b.child.signalCode === null) await b.close();
    rmSync(parent, { recursive: true, force: true });
  });

  it('a user capped before the last periodic write gets no bid after the kill and a restart', async () => {
    if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
    const policiesDir = pacedPolicies(
      parent,
      `  - id: capped
    advertiser: capped
    adomain: [capped.example]
    goal: { type: cpm, valueUsd: 5 }
    budget: { dailyUsd: 100 }
    maxBidCpmUsd: 5
    frequencyCap: { count: 1, windowSec: 86400 }
    creatives:
      - { id: capped-cr, format: banner, w: 300, h: 250, title: t, landingUrl: "https://capped.example/" }
`,
    );
    writeFileSync(join(policiesDir, 'bidder.yaml'), 'frequencySaveMs: 100\n');
    // No-bids with their reason: a capped user's (no eligible campaign, 500) is told from a request
    // shed by a just-started bidder.
    writeFileSync(join(policiesDir, 'exchanges.yaml'), 'exchanges:\n  default:\n    currency: USD\n    noBid: nbr\n');
    const cwd = join(parent, 'run');
    mkdirSync(cwd);
    const caps = join(cwd, 'var', 'ledger.journal', 'freqcaps.json');
    const start = async () => {
      // Alone: not on the Redis the test run may provide (REDIS_URL), where caps live in Redis.
      const b = await spawnBidder({ policiesDir, cwd, env: { NOTICE_SECRET: SECRET, REDIS_URL: '' } });
      running.push(b);
      return b;
    };
    const bid = (b: SpawnedBidder, id: string, user: string) => fetch(`${b.origin}/openrtb2/bid`, { method: 'POST', body: JSON.stringify(request(id, user)), headers: { 'content-type': 'application/json' } });
    /** 'bid' (the bid's body), or the no-bid's reason; asked again after an idle second when a just-started bidder sheds it. */
    const answer = async (b: SpawnedBidder, id: string, user: string) => {
      for (let i = 0; ; i++) {
        const body = await (await bid(b, `${id}-${i}`, user)).json();
        if (body.seatbid) return { kind: 'bid', body };
        if (!(body.nbr === NBR.OVERLOADED || body.nbr === NBR.DEADLINE) || i === 4) return { kind: body.nbr as number };
        await sleep(1000);
      }
    };
    const CAPPED = { kind: NBR.NO_ELIGIBLE_CAMPAIGN };

    const one = await start();
    const first = await answer(one, 'k1', 'user-a');
    expect(first.kind).toBe('bid');
    const won = first.body.seatbid[0].bid[0];
    const nurl = new URL(won.nurl.replace('${AUCTION_PRICE}', String(won.price)).replace('${AUCTION_MIN_TO_WIN}', ''));
    expect((await fetch(one.origin + nurl.pathname + nurl.search)).status).toBe(200);
    expect(await answer(one, 'k2', 'user-a')).toEqual(CAPPED);
    // Until a periodic write holds the win: the file has a user then (the store had none before).
    const users = () => (existsSync(caps) ? readFileSync(caps, 'utf8').split('\n').filter((l) => l.startsWith('"')).length : 0);
    while (users() === 0) await sleep(20);
    one.child.kill('SIGKILL');
    await new Promise((res) => (one.child.exitCode === null && one.child.signalCode === null ? one.child.once('exit', res) : res(null)));

    const two = await start();
    // Before: a bid, the cap forgotten.
    expect(await answer(two, 'k3', 'user-a')).toEqual(CAPPED);
    expect((await answer(two, 'k4', 'user-b')).kind).toBe('bid');
    await two.close();
  });
});
