import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies, PolicyError } from '../src/config/policies.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * Ads that a request's media object rules out, found by a format review: each case states what the
 * request asked for and checks that every bid can run there. Against the demo policies, served at
 * an https public URL so that secure imps are biddable.
 */
const site = { id: 's1', domain: 'news.example', page: 'https://news.example/a' };
const bidsOf = async (r: Response) => (r.status === 200 ? ((await r.json()) as any).seatbid.flatMap((s: any) => s.bid) : []);

// defaultTmaxMs 2 s: these cases are about formats, most requests carry no tmax, and the default
// 200 ms was overrun on a loaded CI host (a DEADLINE no-bid read as a format's).
describe('demo policies', () => {
  let t: TestBidder;
  beforeAll(async () => (t = await startBidder({ publicUrl: 'https://bidder.example', defaultTmaxMs: 2000 })));
  afterAll(() => t?.close());

  it('an image-only banner slot (banner.mimes, corpus prebid-go line 621) gets no HTML markup', async () => {
    const line = readFileSync('test/fixtures/corpus/openrtb-requests.prebid-go.ndjson', 'utf8').split('\n')[620];
    const req = JSON.parse(line);
    expect(req.imp[0].banner.mimes).toEqual(['image/jpeg', 'image/jpg', 'image/gif', 'image/png']);
    // Every demo banner is HTML: none fits; the same slot that also shows HTML gets one.
    expect(await bidsOf(await t.bid(req))).toEqual([]);
    // tmax 2 s: the case is about formats; the request carries none, and the default 200 ms was
    // overrun on a loaded CI host (a DEADLINE no-bid).
    const html = { ...req, tmax: 2000, imp: [{ ...req.imp[0], banner: { ...req.imp[0].banner, mimes: [...req.imp[0].banner.mimes, 'text/html'] } }] };
    const bids = await bidsOf(await t.bid(html));
    expect(bids.length).toBe(1);
    expect(bids[0].adm).toMatch(/^<a href=/);
  });

  it('a video overlay (linearity 2) fits inside the player (video.w/h 320x180)', async () => {
    const req = { id: 'o1', imp: [{ id: '1', video: { mimes: ['video/mp4'], protocols: [2, 3], linearity: 2, w: 320, h: 180 } }], site };
    // The demo's one overlay is 480x70: it answers a 640x360 player, not this one.
    expect(await bidsOf(await t.bid(req))).toEqual([]);
    const wide = await bidsOf(await t.bid({ ...req, id: 'o2', imp: [{ id: '1', video: { ...req.imp[0].video, w: 640, h: 360 } }] }));
    expect(wide.map((b: any) => [b.w, b.h])).toEqual([[480, 70]]);
  });

  it('VAST 4 on a secure imp passes Prebid Server\'s secure-markup check (no "http:" in adm)', async () => {
    const req = { id: 's1', imp: [{ id: '1', secure: 1, video: { mimes: ['video/mp4'], protocols: [7], w: 640, h: 480 } }], site };
    const bids = await bidsOf(await t.bid(req));
    expect(bids.length).toBe(1);
    // prebid-server-java ResponseBidValidator.markupIsNotSecure: "http:" or "http%3A" anywhere in adm.
    const adm: string = bids[0].adm;
    expect(adm.includes('http:') || adm.includes('http%3A'), adm.slice(0, 80)).toBe(false);
    expect(adm.startsWith('<VAST version="4.0">')).toBe(true);
  });

  it('a secure imp that allows VAST 3 and 4 is answered in 3.0, secure and schema-valid as written', async () => {
    const req = { id: 's2', imp: [{ id: '1', secure: 1, video: { mimes: ['video/mp4'], protocols: [2, 3, 7, 13], w: 640, h: 480 } }], site };
    const bids = await bidsOf(await t.bid(req));
    expect(bids.length).toBe(1);
    expect(bids[0].adm.startsWith('<VAST version="3.0">')).toBe(true);
    // The same imp not secure keeps the highest version.
    const open = await bidsOf(await t.bid({ ...req, imp: [{ ...req.imp[0], secure: 0 }] }));
    expect(open[0].adm.startsWith('<VAST version="4.2" xmlns="http://www.iab.com/VAST">')).toBe(true);
  });
});

/** A policy dir: the demo's files with campaigns appended (YAML list items under `campaigns:`). */
function policiesWith(extraCampaignsYaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'formats-policies-'));
  cpSync('policies', dir, { recursive: true });
  writeFileSync(join(dir, 'campaigns.yaml'), readFileSync(join(dir, 'campaigns.yaml'), 'utf8') + extraCampaignsYaml);
  return dir;
}

describe('creatives the policy schema accepts', () => {
  let t: TestBidder;
  let dir = '';
  beforeAll(async () => {
    dir = policiesWith(`
  - id: adm-banner
    advertiser: Adm Co
    adomain: [adm.example]
    cat: [IAB12]
    goal: { type: cpm, valueUsd: 5 }
    budget: { dailyUsd: 100 }
    maxBidCpmUsd: 50
    creatives:
      - id: adm-banner-1
        format: banner
        w: 970
        h: 250
        title: "Own markup, no mime"
        adm: '<a href="\${CLICK_URL}"><img src="https://cdn.adm.example/b.png" width="970" height="250"></a>'
        landingUrl: https://adm.example/
  - id: jpeg-native
    advertiser: Jpeg Co
    adomain: [jpeg.example]
    cat: [IAB12]
    goal: { type: cpm, valueUsd: 5 }
    budget: { dailyUsd: 100 }
    maxBidCpmUsd: 50
    creatives:
      - id: jpeg-native-1
        format: native
        title: "A jpeg main image"
        native:
          images:
            - { type: main, url: "https://cdn.jpeg.example/main-1200x627.jpg", w: 1200, h: 627 }
        landingUrl: https://jpeg.example/
`);
    t = await startBidder({ publicUrl: 'https://bidder.example', defaultTmaxMs: 2000 }, dir);
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an `adm` that declares no `mime` is HTML: it answers a slot that lists text/html, not an image-only one', async () => {
    const req = (mimes: string[]) => ({ id: `m-${mimes.join()}`, imp: [{ id: '1', banner: { w: 970, h: 250, mimes } }], site });
    expect((await bidsOf(await t.bid(req(['text/html'])))).map((b: any) => b.crid)).toEqual(['adm-banner-1']);
    expect(await bidsOf(await t.bid(req(['image/png'])))).toEqual([]);
  });

  it('a native img asset asking for PNG only is not answered with a .jpg whose creative omits `mime`', async () => {
    const request = { ver: '1.2', assets: [{ id: 1, required: 1, title: { len: 90 } }, { id: 2, required: 1, img: { type: 3, wmin: 600, hmin: 300, mimes: ['image/png'] } }], eventtrackers: [{ event: 1, methods: [1] }] };
    const req = { id: 'n1', imp: [{ id: '1', native: { ver: '1.2', request: JSON.stringify(request) } }], site };
    for (const b of await bidsOf(await t.bid(req))) {
      const img = JSON.parse(b.adm).assets.find((a: any) => a.id === 2).img;
      expect(img.url, `crid ${b.crid}`).not.toMatch(/\.jpe?g$/);
    }
    // Asked for JPEG, the same creative answers.
    const jpeg = { ...request, assets: [request.assets[0], { id: 2, required: 1, img: { type: 3, wmin: 600, hmin: 300, mimes: ['image/jpeg'] } }] };
    const bids = await bidsOf(await t.bid({ ...req, id: 'n2', imp: [{ id: '1', native: { ver: '1.2', request: JSON.stringify(jpeg) } }] }));
    expect(bids.length).toBe(1);
  });
});

/** A video creative `id` of a campaign of its own, as campaigns.yaml list items. */
const videoCampaign = (id: string, title: string, mediaUrl: string) => `
  - id: ${id}
    advertiser: Ctl Co
    adomain: [ctl.example]
    cat: [IAB12]
    goal: { type: cpm, valueUsd: 5 }
    budget: { dailyUsd: 100 }
    maxBidCpmUsd: 50
    creatives:
      - id: ${id}-7
        format: video
        durationSec: 7
        title: "${title}"
        mediaFiles: [{ url: "${mediaUrl}", mime: video/mp4, w: 640, h: 360 }]
        landingUrl: https://ctl.example/
`;

/** What loading the demo policies with these campaigns appended throws. */
function loadError(extraCampaignsYaml: string): unknown {
  const dir = policiesWith(extraCampaignsYaml);
  try {
    loadPolicies(dir);
  } catch (e) {
    return e;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return undefined;
}

describe('creatives the policy schema refuses', () => {
  it('a title with a control character XML cannot carry (here U+000B) is refused at load, by name, not written into unparseable VAST', () => {
    const err = loadError(videoCampaign('ctl-video', 'Seven seconds\\x0b', 'https://cdn.ctl.example/a.mp4'));
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).problems).toEqual([expect.stringMatching(/\(ctl-video-7\): title holds the control character U\+000B at character 14/)]);
  });

  it('so is a media file URL with one, which the VAST writes inside CDATA, unescaped', () => {
    const err = loadError(videoCampaign('ctl-url', 'Seven seconds', 'https://cdn.ctl.example/a\x0b.mp4'));
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).problems).toEqual([expect.stringMatching(/\(ctl-url-7\): mediaFiles\/0\.url holds the control character U\+000B at character 26/)]);
  });
});
