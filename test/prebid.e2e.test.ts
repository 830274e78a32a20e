import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { prebidBundle } from './e2e/prebid-bundle.js';
import { testPage } from './e2e/page.js';

/**
 * A real publisher page in a real browser: Prebid.js 11.36 (the npm package, pinned, installed with
 * --ignore-scripts; bundled from its prebuilt chunks) in Debian's headless Chromium, with a banner,
 * a native and an instream video unit pointed at the bidder through `billow_rtb25` and
 * `prebidServerBidAdapter`. The bidder serves HTTPS (Prebid.js marks every imp secure), answers the
 * page's text/plain requests with CORS, and the test checks in the bidder what the page did: each
 * winning bid's notices settle once, and the banner's click counts.
 */
const CHROMIUM = ['chromium', 'chromium-browser'].find((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
const OPENSSL = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
let PREBID_DIR = '';
try {
  PREBID_DIR = join(process.cwd(), 'node_modules/prebid.js');
  readFileSync(join(PREBID_DIR, 'dist/chunks/dependencies.json'));
} catch {
  PREBID_DIR = '';
}
const missing = [!CHROMIUM && 'chromium (apt-get install chromium)', !OPENSSL && 'openssl', !PREBID_DIR && 'the prebid.js package (npm ci)'].filter(Boolean);
if (missing.length && process.env.CI === 'true') throw new Error(`the Prebid.js end-to-end test needs ${missing.join(', ')}; .ci/run installs them`);
if (missing.length) console.warn(`SKIPPED: the Prebid.js end-to-end test needs ${missing.join(', ')}`);

/** Headless Chromium, asynchronously: the bidder under test runs in this process and must keep serving. */
function chromium(args: string[], timeoutMs: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(CHROMIUM!, ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--ignore-certificate-errors', '--no-first-run',
    // Nothing outside this machine: the page's bidders are all on 127.0.0.1.
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => child.on('close', (status) => (clearTimeout(timer), resolve({ status, stdout, stderr }))));
}

describe.skipIf(missing.length > 0)('Prebid.js in headless Chromium against the bidder', () => {
  let dir: string;
  let t: TestBidder;
  let site: Server;
  let pageUrl: string;
  const bidRequests: Array<{ contentType: string; origin: string }> = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'prebid-e2e-'));
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    const ssl = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
    if (ssl.status !== 0) throw new Error(`openssl: ${ssl.stderr}`);
    const policies = join(dir, 'policies');
    cpSync('policies', policies, { recursive: true });
    const ex = parse(readFileSync(join(policies, 'exchanges.yaml'), 'utf8'));
    expect(ex.exchanges.prebid, 'the demo policies define the prebid exchange').toBeTruthy();
    writeFileSync(join(policies, 'exchanges.yaml'), stringify(ex));
    t = await startBidder({ tls: { keyFile: key, certFile: cert }, logLevel: 'silent' }, policies);
    expect(t.bidder.url.startsWith('https://')).toBe(true);
    const bundle = prebidBundle(PREBID_DIR, ['prebidServerBidAdapter', 'billow_rtb25BidAdapter', 'nativeRendering']);
    const page = testPage(`${t.bidder.url}/openrtb2/prebid/bid`);
    site = createServer((req, res) => {
      if (req.url === '/prebid.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
      else if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html' }).end(page);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
    pageUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}/`;
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    await new Promise((r) => site?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const metric = async (name: string, labels: Record<string, string> = {}) => {
    let sum = 0;
    for (const line of (await t.bidder.metricsText()).split('\n')) {
      if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
      if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return sum;
  };

  it('banner, native and video units get the bidder\'s bids, render, and settle their notices once', async () => {
    const run = await chromium(['--virtual-time-budget=20000', '--dump-dom', pageUrl], 120_000);
    const dom = run.stdout ?? '';
    const json = /<pre id="result">([\s\S]*?)<\/pre>/.exec(dom)?.[1] ?? '';
    expect(json, `no result in the page (chromium exit ${run.status}): ${run.stderr?.slice(-2000)}`).not.toBe('pending');
    const result = JSON.parse(json.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'));
    console.log('page result:', JSON.stringify(result, null, 1).slice(0, 4000));
    expect(result.errors).toEqual([]);
    // Each unit got a bid from the bidder, through the adapter it names, as the right media type.
    expect(result.bids['banner-1']).toMatchObject({ bidder: 'billow_rtb25', mediaType: 'banner', currency: 'USD' });
    expect(result.bids['native-1']).toMatchObject({ bidder: 'rtbbidder', mediaType: 'native' });
    expect(result.bids['video-1']).toMatchObject({ bidder: 'billow_rtb25', mediaType: 'video', hasVastXml: true });
    const rendered = (code: string) => result.events.some(([e, d]: [string, any]) => e === 'adRenderSucceeded' && d.adUnitCode === code);
    expect(rendered('banner-1'), JSON.stringify(result.events)).toBe(true);
    expect(rendered('native-1'), JSON.stringify(result.events)).toBe(true);
    expect(result.rendered['video-1']).toMatchObject({ impression: true, mediaFile: expect.stringMatching(/^https:\/\//) });
    expect(result.rendered['banner-1'].link).toContain('/notice/click?');
    // The bidder's side: three wins, each settled once (repeats of a notice are duplicates), one click.
    await new Promise((r) => setTimeout(r, 300));
    expect(await metric('bidder_wins_total')).toBe(3);
    expect(await metric('bidder_clicks_total')).toBe(1);
    for (const result of ['forged', 'expired', 'bad_price', 'malformed']) expect(await metric('bidder_notices_total', { result }), result).toBe(0);
    // Each bid is charged once, at its price: the first of its win, billing or markup impression
    // notices settles it, the others are duplicates or confirm the price that stands. Which of them
    // counts as 'ok' depends on the order the browser sends them in (a native's impression tracker
    // and its burl race: the tracker first, the billing confirms it, also 'ok'), so the money is
    // what is checked, not the count of 'ok' notices.
    const cpms = ['banner-1', 'native-1', 'video-1'].map((code) => result.bids[code].cpm as number);
    // The ledger counts whole micro-dollars: within one of each bid's price.
    const spend = await metric('bidder_spend_usd_total');
    expect(Math.abs(spend - cpms.reduce((a, b) => a + b, 0) / 1000), `spend ${spend} for bids of ${cpms.join(', ')} CPM`).toBeLessThanOrEqual(3e-6);
    for (const result of ['corrected', 'overspend', 'unpriced']) expect(await metric('bidder_notices_total', { result }), result).toBe(0);
    console.log('notices:', (await t.bidder.metricsText()).split('\n').filter((l) => l.startsWith('bidder_notices_total') && !l.endsWith(' 0')).join('; '));
    if (process.env.E2E_SCREENSHOT) {
      const png = join(dir, 'shot.png');
      await chromium(['--virtual-time-budget=20000', '--window-size=1100,720', `--screenshot=${png}`, pageUrl], 120_000);
      copyFileSync(png, process.env.E2E_SCREENSHOT);
    }
  }, 180_000);
});
