import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * OpenRTB request/expected-response pairs under openrtb/cases, run by this one test (as Prebid
 * Server's exemplary/supplemental fixtures). A case names the expected status, and for bids which
 * campaigns may answer each imp, the deal and the currency; for no-bids the `nbr` when the
 * exchange asks for one; for 400s the error code.
 */
interface Case {
  description: string;
  exchange?: string;
  headers?: Record<string, string>;
  request: any;
  expect: {
    status: number;
    error?: string;
    nbr?: number;
    cur?: string;
    /** `crid`: the creatives that may answer; `cat` and `cattax`, where given, must be the bid's own (an absent `cattax` in the bid is the default, 1); `minPrice`: the least the price may be; `price`: the price exactly; `dsa`: the bid's `ext.dsa` (null: none); `language` / `langb`: the bid's, the other absent; `admIncludes` / `admExcludes`: text the markup must hold / must not. */
    bids?: Array<{ impid: string; cid: string[]; crid?: string[]; dealid?: string; cat?: string[]; cattax?: number; minPrice?: number; price?: number; dsa?: object | null; language?: string; langb?: string; w?: number; h?: number; admIncludes?: string[]; admExcludes?: string[] }>;
  };
}

const dir = 'openrtb/cases';
const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ file: f, c: JSON.parse(readFileSync(`${dir}/${f}`, 'utf8')) as Case }));

describe('OpenRTB cases (openrtb/cases/*.json)', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder();
  });
  afterAll(() => t.close());

  for (const { file, c } of cases) {
    it(`${file}: ${c.description}`, async () => {
      const path = c.exchange ? `/openrtb2/${c.exchange}/bid` : '/openrtb2/bid';
      const r = await t.post(path, JSON.stringify(c.request), c.headers);
      const text = await r.text();
      expect(r.status, text).toBe(c.expect.status);
      if (c.expect.error) expect(JSON.parse(text).error).toBe(c.expect.error);
      if (c.expect.nbr !== undefined) expect(JSON.parse(text)).toEqual({ id: c.request.id, nbr: c.expect.nbr });
      if (c.expect.bids) {
        const res = JSON.parse(text);
        expect(res.id).toBe(c.request.id);
        if (c.expect.cur) expect(res.cur).toBe(c.expect.cur);
        const bids = res.seatbid.flatMap((s: any) => s.bid);
        expect(bids.map((b: any) => b.impid).sort()).toEqual(c.expect.bids.map((b) => b.impid).sort());
        for (const want of c.expect.bids) {
          const got = bids.find((b: any) => b.impid === want.impid);
          expect(want.cid).toContain(got.cid);
          if (want.dealid) expect(got.dealid).toBe(want.dealid);
          if (want.crid) expect(want.crid).toContain(got.crid);
          if (want.minPrice !== undefined) expect(got.price).toBeGreaterThanOrEqual(want.minPrice);
          if (want.price !== undefined) expect(got.price).toBe(want.price);
          // null: the bid carries no ext.dsa.
          if (want.dsa !== undefined) expect(got.ext?.dsa).toEqual(want.dsa ?? undefined);
          // OpenRTB 2.6: only one of language and langb.
          if (want.language) expect([got.language, got.langb]).toEqual([want.language, undefined]);
          if (want.langb) expect([got.language, got.langb]).toEqual([undefined, want.langb]);
          if (want.w !== undefined) expect([got.w, got.h]).toEqual([want.w, want.h]);
          for (const s of want.admIncludes ?? []) expect(got.adm).toContain(s);
          for (const s of want.admExcludes ?? []) expect(got.adm).not.toContain(s);
          if (want.cat) expect(got.cat).toEqual(want.cat);
          if (want.cattax !== undefined) expect(got.cattax ?? 1).toBe(want.cattax);
          expect(got.burl).toContain('/notice/billing?');
          // Video and audio carry no nurl (a player would fetch it as the VAST); the others do.
          if (got.mtype === 2 || got.mtype === 3) expect(got.nurl).toBeUndefined();
          else expect(got.nurl).toContain('/notice/win?');
        }
      }
    });
  }
});
