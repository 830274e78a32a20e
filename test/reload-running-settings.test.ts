import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

const TOKEN = 'reload-running-token-0123';
const auth = { authorization: `Bearer ${TOKEN}` };

/**
 * Settings are read at start only (a reload reports bidder.yaml's changes as restartNeeded), so a
 * reload checks its campaigns against the settings that run, not those bidder.yaml now says.
 */
describe('a reload checks campaigns against the running settings', () => {
  let dir: string;
  let t: TestBidder | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
    rmSync(dir, { recursive: true, force: true });
  });
  const setup = (pacer: string) => {
    dir = mkdtempSync(join(tmpdir(), 'reload-running-'));
    cpSync('policies', dir, { recursive: true });
    writeFileSync(join(dir, 'bidder.yaml'), `${readFileSync(join(dir, 'bidder.yaml'), 'utf8')}\npacer: ${pacer}\n`);
  };
  const edit = (file: string, from: string, to: string) => {
    const text = readFileSync(join(dir, file), 'utf8');
    expect(text).toContain(from);
    writeFileSync(join(dir, file), text.replace(from, to));
  };
  const capped = () => edit('campaigns.yaml', 'start: "2026-01-01", end: "2027-12-31"', 'start: "2026-01-01", end: "2027-12-31", pacing: asap, hourlyCapShare: 0.05');
  const reload = async () => {
    const r = await t!.post('/admin/reload/policies', '', auth);
    return { status: r.status, body: (await r.json()) as { restartNeeded?: string[]; problems?: string[] } };
  };

  it('running pacer curve, bidder.yaml edited to value: an hourly cap is refused', async () => {
    setup('curve');
    t = await startBidder({ adminToken: TOKEN }, dir);
    edit('bidder.yaml', 'pacer: curve', 'pacer: value');
    capped();
    const r = await reload();
    expect(r.status).toBe(409);
    expect(r.body.problems).toEqual([expect.stringMatching(/budget\.hourlyCapShare is not held by pacer: curve \(running: a change of bidder\.yaml's pacer waits for a restart\)/)]);
  });

  it('running pacer value, bidder.yaml edited to curve: an hourly cap is taken, the pacer change waits for a restart', async () => {
    setup('value');
    t = await startBidder({ adminToken: TOKEN }, dir);
    edit('bidder.yaml', 'pacer: value', 'pacer: curve');
    capped();
    const r = await reload();
    expect(r.status).toBe(200);
    expect(r.body.restartNeeded).toEqual(['/pacer']);
  });
});
