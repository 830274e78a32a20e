import { describe, expect, it } from 'vitest';
import { vastDuration, vastMarkup } from '../src/respond/vast.js';
import { overlayVastVersionFor, vastVersionFor, type VastVersion } from '../src/eligibility/vast-version.js';
import type { Creative } from '../src/types.js';
import { validateXml, VAST_SCHEMA, withVastNamespace, xmllintMissing } from './helpers/xmllint.js';

const video: Creative = {
  id: 'v<1>&',
  campaignId: 'c',
  format: 'video',
  attr: [],
  title: 'Fly & "save" <now>',
  keywords: [],
  imageEmbedding: [],
  landingUrl: 'https://a.example/',
  durationSec: 90.5,
  mediaFiles: [
    { url: 'https://cdn.example/a.mp4?x=1&y=2', mime: 'video/mp4', w: 640, h: 480, bitrateKbps: 1200 },
    { url: 'https://cdn.example/a.m3u8', mime: 'application/x-mpegURL', w: 1280, h: 720, delivery: 'streaming' },
  ],
  nonLinear: { url: 'https://cdn.example/overlay.png', mime: 'image/png', w: 480, h: 70 },
};
const audio: Creative = { ...video, id: 'a1', format: 'audio', durationSec: 3725, mediaFiles: [{ url: 'https://cdn.example/a.mp3', mime: 'audio/mpeg', bitrateKbps: 128 }], nonLinear: undefined };

const urls = {
  bidId: 'bid-1',
  impression: 'https://b.example/notice/billing?b=1&c=x&price=${AUCTION_PRICE}',
  click: 'https://b.example/notice/click?b=1&s=abc',
  error: 'https://b.example/notice/error?b=1&s=abc',
  start: 'https://b.example/notice/start?b=1&s=abc',
  complete: 'https://b.example/notice/complete?b=1&s=abc',
};
const VERSIONS: VastVersion[] = ['2.0', '3.0', '4.0', '4.1', '4.2'];

describe('VAST', () => {
  it('prints durations as HH:MM:SS(.mmm)', () => {
    expect([90, 7.5, 30, 3725, 0.001, 59.9996].map(vastDuration)).toEqual(['00:01:30', '00:00:07.500', '00:00:30', '01:02:05', '00:00:00.001', '00:01:00']);
  });

  it('picks the highest in-line version the protocols allow, none for wrappers or DAAST only', () => {
    expect(vastVersionFor({ protocols: [2, 5] }, false)).toBe('2.0');
    expect(vastVersionFor({ protocols: [2, 3, 5, 6, 7, 8] }, false)).toBe('4.0');
    expect(vastVersionFor({ protocols: [3, 13, 11] }, false)).toBe('4.2');
    expect(vastVersionFor({ protocol: 3 }, false)).toBe('3.0');
    expect(vastVersionFor({ protocols: [5, 6] }, false)).toBeNull();
    expect(vastVersionFor({ protocols: [9, 10] }, true)).toBeNull();
    expect(vastVersionFor({}, false)).toBe('3.0');
    expect(vastVersionFor({}, true)).toBe('4.2');
  });

  it('on a secure imp, answers VAST 2.0 or 3.0 where the protocols allow one (a VAST 4 namespace is an "http:")', () => {
    expect(vastVersionFor({ protocols: [2, 3, 7, 13] }, false, true)).toBe('3.0');
    expect(vastVersionFor({ protocols: [2, 13] }, true, true)).toBe('2.0');
    expect(vastVersionFor({ protocols: [7, 11] }, false, true)).toBe('4.1');
    expect(vastVersionFor({ protocols: [5, 6] }, false, true)).toBeNull();
    expect(vastVersionFor({}, false, true)).toBe('3.0');
    // No list allows 3.0: a secure audio imp gets it, not a 4.2 that drops its namespace and fails its schema.
    expect(vastVersionFor({}, true, true)).toBe('3.0');
    expect(vastVersionFor({ protocols: [], protocol: 2 }, false)).toBe('2.0');
    expect(overlayVastVersionFor({ protocols: [3, 13] }, true)).toBe('3.0');
    expect(overlayVastVersionFor({ protocols: [7, 13] }, true)).toBe('4.2');
    expect(overlayVastVersionFor({ protocols: [7] }, true)).toBe('4.0');
  });

  it('writes a VAST 4 document for a secure imp without its namespace: no "http:" (Prebid Server\'s markupIsNotSecure)', () => {
    for (const v of VERSIONS) {
      for (const xml of [vastMarkup(video, v, false, urls, video.mediaFiles, true), vastMarkup(video, v, true, urls, [], true), vastMarkup(audio, v, false, urls, audio.mediaFiles, true)]) {
        expect(xml.includes('http:') || xml.includes('http%3A'), `${v}: ${xml.slice(0, 60)}`).toBe(false);
        expect(xml.startsWith(`<VAST version="${v}">`)).toBe(true);
      }
    }
    // Not secure: the namespace stays, and the document is schema-valid as it is.
    expect(vastMarkup(video, '4.2', false, urls)).toMatch(/^<VAST version="4.2" xmlns="http:\/\/www.iab.com\/VAST">/);
  });

  it('answers an overlay in VAST 4.0 only where it is the one version allowed', () => {
    expect(overlayVastVersionFor({ protocols: [2, 3, 5, 6, 7, 8] })).toBe('3.0');
    expect(overlayVastVersionFor({ protocols: [7, 11] })).toBe('4.1');
    expect(overlayVastVersionFor({ protocols: [2, 7, 13] })).toBe('4.2');
    expect(overlayVastVersionFor({ protocols: [7, 8] })).toBe('4.0');
    expect(overlayVastVersionFor({ protocols: [5, 8] })).toBeNull();
    expect(overlayVastVersionFor({})).toBe('3.0');
  });

  it("gives an overlay its size in every version but 4.0, whose schema has no NonLinear attributes", () => {
    for (const v of VERSIONS) {
      const sized = vastMarkup(video, v, true, urls).includes('<NonLinear width="480" height="70" minSuggestedDuration="00:01:30.500">');
      expect(sized, v).toBe(v !== '4.0');
    }
  });

  const missing = xmllintMissing();
  it.skipIf(!!missing)('every document it writes validates against the IAB schema of its version (xmllint)', () => {
    const docs = VERSIONS.flatMap((v) => [
      { xml: vastMarkup(video, v, false, urls), xsd: VAST_SCHEMA[v], what: `${v} linear` },
      { xml: vastMarkup(video, v, true, urls), xsd: VAST_SCHEMA[v], what: `${v} non-linear` },
      { xml: vastMarkup(audio, v, false, urls), xsd: VAST_SCHEMA[v], what: `${v} audio` },
      // A secure imp's VAST 4 has no namespace (players match by name); declared again here, only
      // for the schema, it is the same document.
      { xml: withVastNamespace(vastMarkup(video, v, false, urls, video.mediaFiles, true)), xsd: VAST_SCHEMA[v], what: `${v} linear, secure` },
      { xml: withVastNamespace(vastMarkup(video, v, true, urls, [], true)), xsd: VAST_SCHEMA[v], what: `${v} non-linear, secure` },
    ]);
    const results = validateXml(docs);
    expect(results.map((r, i) => (r ? `${docs[i].what}: ${r}` : '')).filter(Boolean)).toEqual([]);
    // The checker itself refuses a broken document (so the line above can fail).
    expect(validateXml([{ xml: docs[0].xml.replace(/<Impression>.*?<\/Impression>/, '').replace('<AdTitle>', '<Bogus/><AdTitle>'), xsd: VAST_SCHEMA['2.0'] }])[0]).not.toBe('');
    // Why a 4.0 overlay has no size: the published 4.0 schema refuses one.
    const sized40 = vastMarkup(video, '4.0', true, urls).replace('<NonLinear>', '<NonLinear width="480" height="70">');
    expect(validateXml([{ xml: sized40, xsd: VAST_SCHEMA['4.0'] }])[0]).toMatch(/attribute 'width' is not allowed/);
  });

  it('drops control characters XML cannot carry from text, keeping tab, LF and CR: the document parses', () => {
    const ctl = { ...video, title: 'Seven\u0000 seconds\u000b\u001f\tnow\r\n' };
    for (const v of VERSIONS) {
      const xml = vastMarkup(ctl, v, false, urls);
      expect(xml).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/);
      expect(xml).toContain('<AdTitle>Seven seconds\tnow\r\n</AdTitle>');
    }
    if (!missing) expect(validateXml([{ xml: vastMarkup(ctl, '3.0', false, urls), xsd: VAST_SCHEMA['3.0'] }])).toEqual(['']);
  });

  it('carries impression, error, start/complete tracking, click and media files', () => {
    const xml = vastMarkup(video, '4.2', false, urls);
    expect(xml.startsWith('<VAST version="4.2" xmlns="http://www.iab.com/VAST">')).toBe(true);
    for (const u of Object.values(urls).slice(1)) expect(xml).toContain(`<![CDATA[${u}]]>`);
    expect(xml).toContain('<Duration>00:01:30.500</Duration>');
    expect(xml).toContain('<MediaFile delivery="progressive" type="video/mp4" width="640" height="480" bitrate="1200"><![CDATA[https://cdn.example/a.mp4?x=1&y=2]]></MediaFile>');
    expect(xml).toContain('<AdServingId>bid-1</AdServingId>');
    expect(xml).toContain('<AdTitle>Fly &amp; &quot;save&quot; &lt;now&gt;</AdTitle>');
    const nl = vastMarkup(video, '3.0', true, urls);
    expect(nl).toContain('<NonLinearAds>');
    expect(nl).not.toContain('<Linear>');
    expect(nl).toContain('<StaticResource creativeType="image/png"><![CDATA[https://cdn.example/overlay.png]]></StaticResource>');
  });
});
