import type { BidRequest } from 'iab-openrtb/v26';
import { describe, expect, it } from 'vitest';
import { createPrivacy } from '../src/eligibility/privacy.js';
import { startBidder } from './helpers/bidder.js';

/**
 * A GPP field that carries nothing readable ('' , a number, a string gpp_sid, a gpp_sid beside no
 * string) does not override a readable GPP string in the other placement: regs.gpp allowing with
 * regs.ext.gpp "" answered gpp-not-understood, so the request lost its user data (review fixrev1).
 * Alone, a gpp of another type is still not understood; an opting-out string still opts out.
 * A gpp_sid written as a string or a list of strings ("2", "7,8", ["2"]) names the sections it
 * spells: read as absent, an allowing usnat string with gpp_sid "2" allowed though EU TCF (2) was
 * named applicable and the string had no TCF section, where [2] was not understood (review fixrev4).
 * A gpp_sid of any other shape, or not numeric, that applies to a string is not understood.
 */

/** usnat (SID 7), notices given: nothing opted out, and sale and targeted advertising opted out. */
const GPP_ALLOWS = 'DBABLA~CVVqAAAAAABA.QA';
const GPP_OPTS_OUT = 'DBABLA~CVVZAAAAAABA.QA';

const CASES: Array<[string, Record<string, unknown>, string]> = [
  ['regs.gpp allows + regs.ext.gpp ""', { gpp: GPP_ALLOWS, gpp_sid: [7], ext: { gpp: '' } }, ''],
  ['regs.gpp allows + regs.ext.gpp 0 (number)', { gpp: GPP_ALLOWS, gpp_sid: [7], ext: { gpp: 0 } }, ''],
  ['regs.gpp allows + regs.ext.gpp_sid "7" (string)', { gpp: GPP_ALLOWS, gpp_sid: [7], ext: { gpp_sid: '7' } }, ''],
  ['regs.gpp allows sid [7] + regs.ext.gpp_sid [2] without regs.ext.gpp', { gpp: GPP_ALLOWS, gpp_sid: [7], ext: { gpp_sid: [2] } }, ''],
  ['regs.gpp "" + regs.ext.gpp allows', { gpp: '', ext: { gpp: GPP_ALLOWS, gpp_sid: [7] } }, ''],
  ['regs.gpp "" alone', { gpp: '' }, ''],
  ['regs.gpp allows, regs.gpp_sid "7": every section read', { gpp: GPP_ALLOWS, gpp_sid: '7' }, ''],
  ['regs.gpp 0 alone', { gpp: 0 }, 'gpp-not-understood'],
  ['regs.ext.gpp {} alone', { ext: { gpp: {} } }, 'gpp-not-understood'],
  ['regs.gpp opts out + regs.ext.gpp ""', { gpp: GPP_OPTS_OUT, gpp_sid: [7], ext: { gpp: '' } }, 'gpp-opt-out'],
  ['regs.gpp opts out + regs.ext.gpp 0', { gpp: GPP_OPTS_OUT, gpp_sid: [7], ext: { gpp: 0 } }, 'gpp-opt-out'],
  ['regs.gpp "" + regs.ext.gpp opts out', { gpp: '', ext: { gpp: GPP_OPTS_OUT, gpp_sid: [7] } }, 'gpp-opt-out'],
  ['regs.gpp opts out, regs.gpp_sid "7": every section read', { gpp: GPP_OPTS_OUT, gpp_sid: '7' }, 'gpp-opt-out'],
  ['regs.gpp opts out, regs.gpp_sid "7" + regs.ext.gpp_sid [7]', { gpp: GPP_OPTS_OUT, gpp_sid: '7', ext: { gpp_sid: [7] } }, 'gpp-opt-out'],
  // Sections named in a string or a list of strings, as [2] names them: a named section the string lacks is not understood.
  ['regs.gpp allows (usnat only), regs.gpp_sid [2]', { gpp: GPP_ALLOWS, gpp_sid: [2] }, 'gpp-not-understood'],
  ['regs.gpp allows (usnat only), regs.gpp_sid "2"', { gpp: GPP_ALLOWS, gpp_sid: '2' }, 'gpp-not-understood'],
  ['regs.gpp allows (usnat only), regs.gpp_sid ["2"]', { gpp: GPP_ALLOWS, gpp_sid: ['2'] }, 'gpp-not-understood'],
  ['regs.gpp allows (usnat only), regs.gpp_sid "8"', { gpp: GPP_ALLOWS, gpp_sid: '8' }, 'gpp-not-understood'],
  ['regs.gpp allows (usnat only), regs.gpp_sid "7,8"', { gpp: GPP_ALLOWS, gpp_sid: '7,8' }, 'gpp-not-understood'],
  ['regs.gpp allows (usnat only), regs.gpp_sid ["7", "8"]', { gpp: GPP_ALLOWS, gpp_sid: ['7', '8'] }, 'gpp-not-understood'],
  ['regs.ext.gpp allows (usnat only), regs.ext.gpp_sid "2"', { ext: { gpp: GPP_ALLOWS, gpp_sid: '2' } }, 'gpp-not-understood'],
  ['regs.gpp allows + regs.ext.gpp_sid "2" without regs.ext.gpp', { gpp: GPP_ALLOWS, ext: { gpp_sid: '2' } }, 'gpp-not-understood'],
  ['regs.gpp allows, regs.gpp_sid ["7"]', { gpp: GPP_ALLOWS, gpp_sid: ['7'] }, ''],
  ['regs.gpp allows, regs.gpp_sid " 7 "', { gpp: GPP_ALLOWS, gpp_sid: ' 7 ' }, ''],
  // Any other shape or content cannot say which sections apply: not understood, or the string's own denial.
  ['regs.gpp allows, regs.gpp_sid "seven"', { gpp: GPP_ALLOWS, gpp_sid: 'seven' }, 'gpp-not-understood'],
  ['regs.gpp allows, regs.gpp_sid ""', { gpp: GPP_ALLOWS, gpp_sid: '' }, 'gpp-not-understood'],
  ['regs.gpp allows, regs.gpp_sid "7;8"', { gpp: GPP_ALLOWS, gpp_sid: '7;8' }, 'gpp-not-understood'],
  ['regs.gpp allows, regs.gpp_sid "7.5"', { gpp: GPP_ALLOWS, gpp_sid: '7.5' }, 'gpp-not-understood'],
  ['regs.gpp allows, regs.gpp_sid ["7,8"]', { gpp: GPP_ALLOWS, gpp_sid: ['7,8'] }, 'gpp-not-understood'],
  ['regs.gpp allows, regs.gpp_sid 7 (not a list)', { gpp: GPP_ALLOWS, gpp_sid: 7 }, 'gpp-not-understood'],
  ['regs.gpp allows, regs.gpp_sid {}', { gpp: GPP_ALLOWS, gpp_sid: {} }, 'gpp-not-understood'],
  ['regs.gpp allows, regs.gpp_sid [true]', { gpp: GPP_ALLOWS, gpp_sid: [true] }, 'gpp-not-understood'],
  ['regs.gpp allows + regs.ext.gpp_sid "seven" without regs.ext.gpp', { gpp: GPP_ALLOWS, ext: { gpp_sid: 'seven' } }, 'gpp-not-understood'],
  ['regs.gpp allows sid [7] + regs.ext.gpp_sid "seven" without regs.ext.gpp', { gpp: GPP_ALLOWS, gpp_sid: [7], ext: { gpp_sid: 'seven' } }, ''],
  ['regs.gpp opts out, regs.gpp_sid "seven"', { gpp: GPP_OPTS_OUT, gpp_sid: 'seven' }, 'gpp-opt-out'],
];

const base = {
  imp: [{ id: '1', banner: { w: 300, h: 250 } }],
  site: { id: 's-news', domain: 'news.example', cat: ['IAB12'], page: 'https://news.example/a', publisher: { id: 'pub-1' } },
  device: { ip: '203.0.113.77', os: 'iOS', devicetype: 4, geo: { country: 'USA', region: 'CA' } },
  user: { id: 'user-gpp-1', buyeruid: 'buyer-gpp-1' },
  tmax: 3000,
};

describe('unreadable GPP fields beside a readable string', () => {
  const p = createPrivacy();
  for (const [name, regs, want] of CASES) {
    it(`${name}: ${want || 'user data'}`, () => {
      expect(p.decide({ ...base, id: 'r', regs } as unknown as BidRequest)).toBe(want);
    });
  }

  it('through the bidder: the request passes validation, and the user key is in the notices where the readable string allows', async () => {
    const t = await startBidder();
    try {
      for (const [name, regs, want] of CASES) {
        const r = await t.bid({ ...base, id: `gpp-${name}`, regs });
        expect(r.status, name).toBe(200);
        const bids = ((await r.json()) as any).seatbid.flatMap((s: any) => s.bid);
        expect(bids.length, name).toBeGreaterThan(0);
        expect(bids.some((b: any) => `${b.nurl}${b.burl}`.includes('&uk=')), name).toBe(want === '');
      }
    } finally {
      await t.close();
    }
  });
});
