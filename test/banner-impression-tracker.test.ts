import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settledUsd } from './helpers/money.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * Prebid Server review (2026-12-05) item 3: behind Prebid Server, Prebid Mobile's own rendering
 * fires neither nurl nor burl, and a banner's markup carried no impression tracker (native and VAST
 * do), so a served banner was billed and never recorded. An exchange with
 * `bannerImpressionTracker: true` (the shipped `prebid-server` entry) gets one in banner markup.
 */
const req = (id: string) => ({ id, at: 1, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });
const local = (t: TestBidder, url: string) => t.url + url.replace(/^https?:\/\/[^/]+/, '');
const unXml = (s: string) => s.replace(/&#38;/g, '&');

const CHROMIUM = ['chromium', 'chromium-browser'].find((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
if (!CHROMIUM && process.env.CI === 'true') throw new Error('the banner render check needs chromium (apt-get install chromium); .ci/run installs it');

/**
 * The markup rendered in a frame of the ad's size, as a page shows it: the frame's content size and
 * its visible size (a scrollbar takes from the second). The tracker's request goes nowhere.
 */
function frameSizes(adm: string, w: number, h: number): string {
  const page = `<html><body style="margin:0"><iframe id="f" width="${w}" height="${h}" frameborder="0" srcdoc="${adm.replace(/&/g, '&amp;').replace(/"/g, '&quot;')}"></iframe>
<pre id="out">pending</pre><script>document.getElementById('f').onload=()=>{const d=document.getElementById('f').contentDocument;d.body.style.margin='0';
document.getElementById('out').textContent=[d.documentElement.scrollWidth,d.documentElement.scrollHeight,d.documentElement.clientWidth,d.documentElement.clientHeight].join('x')}</script></body></html>`;
  const file = join(mkdtempSync(join(tmpdir(), 'banner-frame-')), 'page.html');
  writeFileSync(file, page);
  const run = spawnSync(CHROMIUM!, ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--host-resolver-rules=MAP * ~NOTFOUND', '--virtual-time-budget=5000', '--dump-dom', `file://${file}`], { encoding: 'utf8', timeout: 60_000 });
  rmSync(join(file, '..'), { recursive: true, force: true });
  return /<pre id="out">([^<]*)<\/pre>/.exec(run.stdout)?.[1] ?? `no result: ${run.stderr.slice(-500)}`;
}

describe('banner impression tracker', () => {
  let t: TestBidder;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'banner-tracker-'));
    cpSync('policies', dir, { recursive: true });
    const file = join(dir, 'campaigns.yaml');
    // Spent as bids come (these cases are about money, not pacing).
    writeFileSync(file, readFileSync(file, 'utf8').replace(/dailyUsd: [\d.]+/g, 'dailyUsd: 50, pacing: asap'));
    t = await startBidder({}, dir);
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function banner(id: string, exchange?: string) {
    let r = await t.bid(req(id), exchange);
    // Chromium shares this host's cores with the bidder: a scoring call it held for seconds teaches
    // the batcher's admission control a wait past tmax, and the next request is shed (204, no nbr
    // on the default exchange; seen in CI). After an idle second the learnt waits start over
    // (batcher.ts expectedDelayMs): asked once more then. What this suite checks is the markup.
    if (r.status === 204) {
      await new Promise((resolve) => setTimeout(resolve, 1100));
      r = await t.bid(req(`${id}-again`), exchange);
    }
    expect(r.status).toBe(200);
    return (await r.json()).seatbid[0].bid[0];
  }

  it('on prebid-server: a rendered banner whose client fires no notice settles once, at its bid', async () => {
    const b = await banner('pbs-1', 'prebid-server');
    const m = /<img src="([^"]+)" width="1" height="1"/.exec(b.adm);
    expect(m).not.toBeNull();
    const tracker = unXml(m![1]);
    expect(tracker).toContain('/notice/impression?');
    // Public markup: no price in it.
    expect(new URL(tracker).searchParams.has('p')).toBe(false);
    const spent = () => t.metric('bidder_spend_usd_total', { campaign: b.cid });
    const spent0 = await spent();
    expect((await fetch(local(t, tracker))).status).toBe(200);
    expect(await spent()).toBeCloseTo(spent0 + settledUsd(b.price), 9);
    // The page's repeat is a duplicate.
    expect((await fetch(local(t, tracker))).status).toBe(200);
    expect(await spent()).toBeCloseTo(spent0 + settledUsd(b.price), 9);
    // The click URL is still there, and is no tracker.
    const click = unXml(/href="([^"]+)"/.exec(b.adm)![1]);
    expect((await fetch(local(t, click).replace('/notice/click?', '/notice/impression?'))).status).toBe(403);
  });

  // Review of e4e9fd1: placed absolute with no offsets, the pixel sat under the ad, and a frame of
  // the ad's size scrolled (content 300x251, visible 285x235).
  it.skipIf(!CHROMIUM)('the tracker leaves a frame of the ad\'s size as it was: no scrolling, nothing clipped', async () => {
    const b = await banner('pbs-frame', 'prebid-server');
    expect(b.adm).toContain('/notice/impression');
    expect(frameSizes(b.adm, b.w, b.h)).toBe(`${b.w}x${b.h}x${b.w}x${b.h}`);
  }, 90_000);

  it('elsewhere banner markup stays as it was: no tracker', async () => {
    const b = await banner('default-1');
    expect(b.adm).not.toContain('/notice/impression');
    expect(b.adm).not.toContain('<img');
  });
});
