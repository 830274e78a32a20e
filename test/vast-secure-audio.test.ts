import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { validateXml, VAST_SCHEMA, xmllintMissing } from './helpers/xmllint.js';

/**
 * A secure audio imp that names no protocols: it got VAST 4.2 (audio's version where none is
 * named) without the 4.x namespace (dropped on secure imps for Prebid Server's secure-markup
 * check), a document its schema refuses. No list allows 2.0 and 3.0 as well, so it is answered as
 * a secure imp whose list allows 3.0 is: VAST 3.0, valid as written and with no "http:".
 */
describe('VAST for a secure audio imp without protocols', () => {
  let t: TestBidder;
  const skip = xmllintMissing();
  beforeAll(async () => {
    // An https public URL: with an http one a secure imp gets no bid.
    t = await startBidder({ publicUrl: 'https://bidder.example' });
  });
  afterAll(() => t.close());

  it('is schema-valid for the version it declares, as written', async () => {
    const r = await t.bid({ id: 'sa', imp: [{ id: '1', secure: 1, audio: { mimes: ['audio/mp4'], maxduration: 30 } }], app: { id: 'a1', bundle: 'com.radio.example', cat: ['IAB1'] } });
    expect(r.status).toBe(200);
    const adm: string = (await r.json()).seatbid[0].bid[0].adm;
    const version = /^<VAST version="([\d.]+)"/.exec(adm)?.[1] ?? '';
    if (!skip) expect(validateXml([{ xml: adm, xsd: VAST_SCHEMA[version] }])).toEqual(['']);
    expect(version).toBe('3.0');
    expect(adm.includes('http:')).toBe(false);
  });
});
