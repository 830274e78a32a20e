import type { TestBidder } from './bidder.js';

/** A one-imp 300x250 banner request on a news site, with a floor of 0.01 USD: a plain bid to click on. */
export const bannerRequest = (id: string) => ({ id, at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });

/** A notice URL of the bidder's public base, sent to the test bidder instead. */
export const localUrl = (t: TestBidder, url: string) => t.url + url.replace(/^https?:\/\/[^/]+/, '');

/** The path of the click URL in a bid's banner markup (its `&` unescaped). */
export const clickPath = (bid: { adm: string }) => /href="([^"]+)"/.exec(bid.adm)![1].replace(/&#38;/g, '&').replace(/^https?:\/\/[^/]+/, '');
