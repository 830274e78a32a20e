import { canonicalMime } from '../src/eligibility/mime.js';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { validateXml, VAST_SCHEMA, withVastNamespace, xmllintMissing } from './helpers/xmllint.js';

/**
 * Every ad that wins can run: each bid the bidder gives to a request of the shared corpus
 * (test/fixtures/corpus) is checked against what its imp asked for, by checks written here from the
 * specs rather than from the bidder's code — native assets (ids, required, len, image sizes, the
 * response form of the request's version), VAST (valid against the IAB schema of a version the
 * imp's protocols allow, linear or not as asked) and secure imps (nothing but https).
 */
const dir = 'test/fixtures/corpus';
const FILES = ['openrtb-requests.prebid-go.ndjson', 'openrtb-requests.prebid-go.rejected.ndjson', 'openrtb-requests.iab-spec.ndjson'];
const lines = (f: string) => readFileSync(`${dir}/${f}`, 'utf8').trim().split('\n');

/** In-line VAST versions by OpenRTB protocol (AdCOM "Creative Subtypes - Audio/Video"). */
const PROTOCOL_VERSION: Record<number, string> = { 2: '2.0', 3: '3.0', 7: '4.0', 11: '4.1', 13: '4.2' };
const DATA_TYPE_COUNT = 12;
// Markup is public (the page, the player): it may carry click-scoped trackers only, never the
// exchange's signed win, billing or loss URL, nor the bid price (docs/money.md).
const PUBLIC_LEAK = /\/notice\/(win|billing|loss)\?|[?&](amp;)?p=/;

function nativeRequestOf(native: any): { r: any; wrapped: boolean } | null {
  let r = native?.request;
  if (typeof r === 'string') {
    try {
      r = JSON.parse(r);
    } catch {
      return null;
    }
  }
  if (!r || typeof r !== 'object') return null;
  const wrapped = !!(r.native && typeof r.native === 'object');
  return { r: wrapped ? r.native : r, wrapped };
}

const chars = (s: string) => [...s].length;
/** Native answers that link a privacy page (the demo's native campaign has one). */
let privacyLinked = 0;

function checkNative(imp: any, adm: string, where: string): void {
  expect(adm, `${where}: public markup carries an exchange notice or the bid price`).not.toMatch(PUBLIC_LEAK);
  const parsed = nativeRequestOf(imp.native);
  expect(parsed, `${where}: a bid on an unparsable native request`).not.toBeNull();
  const { r, wrapped } = parsed!;
  const ver = String(r.ver ?? imp.native.ver ?? (wrapped ? '1.0' : '1.2'));
  const res = JSON.parse(adm);
  // Native §5.1: since 1.1 the response object is the root; the 1.0 form wraps it in `native`.
  // A 1.0 request in that form is answered in it; any other is answered plain, a 1.1 or 1.2
  // request in the old wrapper too (Prebid.js and Prebid Server read top-level assets).
  const inWrapper = wrapped && !/^1\.[1-9]/.test(ver);
  const body = inWrapper ? res.native : res;
  if (!inWrapper) expect(res.native, `${where}: answer to a ${ver} request wrapped`).toBeUndefined();
  expect(Array.isArray(body?.assets), `${where}: no assets in ${adm}`).toBe(true);
  const asked = new Map<number, any>(r.assets.map((a: any) => [a.id, a]));
  const seen = new Set<number>();
  for (const a of body.assets) {
    const q = asked.get(a.id);
    expect(q, `${where}: asset id ${a.id} is not in the request`).toBeTruthy();
    expect(seen.has(a.id), `${where}: asset id ${a.id} answered twice`).toBe(false);
    seen.add(a.id);
    if (q.title) {
      expect(typeof a.title?.text, `${where}: asset ${a.id} asks for a title`).toBe('string');
      if (q.title.len > 0) expect(chars(a.title.text), `${where}: title over len ${q.title.len}`).toBeLessThanOrEqual(q.title.len);
    } else if (q.img) {
      expect(a.img?.url, `${where}: asset ${a.id} asks for an image`).toMatch(/^https:\/\//);
      const { w, h, wmin, hmin } = q.img;
      if (wmin > 0 || hmin > 0) {
        expect(a.img.w).toBeGreaterThanOrEqual(wmin ?? 0);
        expect(a.img.h).toBeGreaterThanOrEqual(hmin ?? 0);
      } else {
        if (w > 0) expect(a.img.w, `${where}: image width`).toBe(w);
        if (h > 0) expect(a.img.h, `${where}: image height`).toBe(h);
      }
    } else if (q.data) {
      expect(q.data.type >= 1 && q.data.type <= DATA_TYPE_COUNT, `${where}: data type ${q.data.type}`).toBe(true);
      expect(typeof a.data?.value, `${where}: asset ${a.id} asks for data`).toBe('string');
      if (q.data.len > 0) expect(chars(a.data.value), `${where}: data over len ${q.data.len}`).toBeLessThanOrEqual(q.data.len);
    } else {
      throw new Error(`${where}: answered asset ${a.id} of a kind the bidder has no content for`);
    }
  }
  for (const q of r.assets) if (q.required === 1) expect(seen.has(q.id), `${where}: required asset ${q.id} missing`).toBe(true);
  expect(body.link?.url).toContain('/notice/click?');
  // 1.2 §5.1: a privacy page only where the request says it supports one (`privacy: 1`).
  if (body.privacy !== undefined) {
    expect(r.privacy, `${where}: privacy linked unasked`).toBe(1);
    expect(body.privacy, `${where}: privacy URL`).toMatch(/^https:\/\//);
    privacyLinked++;
  }
  // Impression tracking as the request offers it (1.2 §4.7 eventtrackers; imptrackers otherwise).
  const offered = ver.startsWith('1.2') && Array.isArray(r.eventtrackers);
  const method = [1, 2].find((m) => offered && r.eventtrackers.some((e: any) => e.event === 1 && e.methods?.includes(m)));
  if (method !== undefined) expect(body.eventtrackers).toEqual([{ event: 1, method, url: expect.stringContaining('/notice/impression?') }]);
  else expect(body.imptrackers).toEqual([expect.stringContaining('/notice/impression?')]);
}

interface VastDoc {
  xml: string;
  xsd: string;
  where: string;
}

function checkVast(imp: any, bid: any, where: string, docs: VastDoc[]): void {
  const media = bid.mtype === 3 ? imp.audio : imp.video;
  expect(media, `${where}: mtype ${bid.mtype} on an imp without that media`).toBeTruthy();
  const adm: string = bid.adm;
  const version = /^<VAST version="([0-9.]+)"/.exec(adm)?.[1] ?? '';
  const protocols: number[] | null = media.protocols ?? (media.protocol ? [media.protocol] : null);
  if (protocols?.length) {
    const allowed = protocols.map((p) => PROTOCOL_VERSION[p]).filter(Boolean);
    expect(allowed, `${where}: VAST ${version} for protocols ${protocols}`).toContain(version);
  }
  expect(VAST_SCHEMA[version], `${where}: version ${version}`).toBeTruthy();
  expect(adm).toContain('<Impression>');
  expect(adm, `${where}: public markup carries an exchange notice or the bid price`).not.toMatch(PUBLIC_LEAK);
  if (media.linearity === 2) expect(adm, `${where}: linearity 2 answered linear`).toContain('<NonLinearAds>');
  else {
    expect(adm).toContain('<MediaFile ');
    expect(adm).toMatch(/<Duration>\d\d:[0-5]\d:[0-5]\d(\.\d{3})?<\/Duration>/);
    if (Array.isArray(media.mimes) && media.mimes.length) {
      const types = [...adm.matchAll(/<MediaFile [^>]*type="([^"]+)"/g)].map((m) => m[1]);
      // Compared as players do: case-blind, audio/mp3 as audio/mpeg (src/eligibility/mime.ts).
      const asked = media.mimes.map(canonicalMime);
      expect(types.some((t) => asked.includes(canonicalMime(t))), `${where}: no media file of ${media.mimes}`).toBe(true);
    }
  }
  expect(bid.nurl, `${where}: a video nurl would be fetched as the VAST`).toBeUndefined();
  // A secure imp's VAST 4 goes without its namespace (checkSecure): declared again for the schema only.
  docs.push({ xml: imp.secure === 1 ? withVastNamespace(adm) : adm, xsd: VAST_SCHEMA[version], where });
}

function checkSecure(bid: any, where: string): void {
  for (const u of [bid.nurl, bid.burl, bid.lurl].filter(Boolean)) expect(u, where).toMatch(/^https:\/\//);
  // As Prebid Server's markupIsNotSecure reads the raw markup: any "http:" or "http%3A" in it, a
  // namespace name (never fetched) included, flags or drops the bid.
  const adm = String(bid.adm);
  for (const s of ['http:', 'http%3A']) expect(adm.includes(s), `${where}: ${s} in the markup of a secure imp: ${adm.slice(Math.max(0, adm.indexOf(s) - 40), adm.indexOf(s) + 40)}`).toBe(false);
}

describe('every bid on the shared corpus can run', () => {
  let t: TestBidder;
  const skipVast = xmllintMissing();
  beforeAll(async () => {
    // An https public URL: secure imps are biddable (with an http one they get no bid, tested below).
    t = await startBidder({ publicUrl: 'https://bidder.example' });
  });
  afterAll(() => t?.close());

  const counts = { requests: 0, nativeImps: 0, nativeBids: 0, vastBids: 0, secureBids: 0 };
  const docs: VastDoc[] = [];

  for (const file of FILES) {
    it(`answers native, video, audio and secure imps of ${file} with markup that fits them`, async () => {
      const reqs = lines(file);
      // One request at a time: concurrent ones would be shed under load and check fewer bids.
      let next = 0;
      const worker = async () => {
        while (next < reqs.length) {
          const n = next++;
          const line = reqs[n];
          const req = JSON.parse(line);
          counts.requests++;
          counts.nativeImps += (req.imp ?? []).filter((i: any) => i?.native).length;
          const r = await t.post('/openrtb2/bid', line);
          const text = await r.text();
          if (r.status !== 200) continue;
          for (const bid of JSON.parse(text).seatbid.flatMap((s: any) => s.bid)) {
            const imp = req.imp.find((i: any) => i.id === bid.impid);
            const where = `${file}:${n + 1} imp ${bid.impid}`;
            if (bid.mtype === 4) {
              counts.nativeBids++;
              checkNative(imp, bid.adm, where);
            } else if (bid.mtype === 2 || bid.mtype === 3) {
              counts.vastBids++;
              checkVast(imp, bid, where, docs);
            } else expect(imp.banner, where).toBeTruthy();
            if (imp.secure === 1) {
              counts.secureBids++;
              checkSecure(bid, where);
            }
          }
        }
      };
      await worker();
    }, 300_000);
  }

  it('found enough of each kind, and every VAST validates against its version\'s IAB schema', () => {
    console.log('conformance over the corpus:', JSON.stringify(counts));
    // Enough of each kind that the checks above mean something.
    expect(counts.requests).toBe(FILES.reduce((n, f) => n + lines(f).length, 0));
    expect(counts.nativeBids).toBeGreaterThan(20);
    expect(counts.vastBids).toBeGreaterThan(100);
    expect(counts.secureBids).toBeGreaterThan(50);
    expect(privacyLinked, 'no native answer linked a privacy page where asked').toBeGreaterThan(0);
    if (skipVast) return;
    const results = validateXml(docs);
    const invalid = results.map((e, i) => (e ? `${docs[i].where}: ${e}` : '')).filter(Boolean);
    expect(invalid, invalid.slice(0, 5).join('\n')).toEqual([]);
  });
});
