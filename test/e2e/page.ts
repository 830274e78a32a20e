/**
 * The publisher page of the Prebid.js end-to-end test: a banner unit through `billow_rtb25` (a
 * plain OpenRTB client adapter, `params.endpoint`), a native unit through `prebidServerBidAdapter`
 * (`s2sConfig.endpoint`) and an instream video unit through `billow_rtb25`, all pointed at the
 * bidder. It renders the winners, plays the video's VAST the way a player starts it (fetch the
 * VAST, call its Impression URL), clicks the banner's link, and writes what happened as JSON into
 * `<pre id="result">` for `chromium --dump-dom`.
 */
export function testPage(bidUrl: string): string {
  const config = JSON.stringify({ bidUrl });
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>rtb-bidder × Prebid.js</title>
<style>body{font:14px sans-serif;margin:16px} .slot{display:inline-block;vertical-align:top;margin:8px;border:1px solid #ccc}
.slot h4{margin:4px;font-size:12px;color:#666} iframe{border:0;display:block} pre{font-size:11px;white-space:pre-wrap}</style>
<script src="/prebid.js"></script></head>
<body>
<div class="slot"><h4>banner-1 (billow_rtb25)</h4><iframe id="f-banner-1" width="300" height="250"></iframe></div>
<div class="slot"><h4>native-1 (prebidServer)</h4><iframe id="f-native-1" width="320" height="300"></iframe></div>
<div class="slot"><h4>video-1 (billow_rtb25, instream: VAST fetched)</h4><div id="video-1" style="width:320px;height:120px;font-size:11px;overflow:hidden"></div></div>
<pre id="result">pending</pre>
<script>
const CFG = ${config};
const result = { events: [], bids: {}, rendered: {}, errors: [] };
const log = (e, d) => result.events.push([e, d]);
window.onerror = (m) => result.errors.push(String(m));
const done = () => { document.getElementById('result').textContent = JSON.stringify(result); };
const units = [
  { code: 'banner-1', mediaTypes: { banner: { sizes: [[300, 250]] } },
    bids: [{ bidder: 'billow_rtb25', params: { endpoint: CFG.bidUrl, placementId: 'banner-1' } }] },
  { code: 'native-1', mediaTypes: { native: {
      ortb: { ver: '1.2', assets: [
        { id: 1, required: 1, title: { len: 80 } },
        { id: 2, required: 1, img: { type: 3, wmin: 300, hmin: 250 } },
        { id: 3, required: 0, data: { type: 1 } } ] },
      adTemplate: '<div style="font:13px sans-serif"><a id="native-link" href="##hb_native_linkurl##" target="_blank"><img src="##hb_native_asset_id_2##" width="300"><b>##hb_native_asset_id_1##</b></a><div>##hb_native_asset_id_3##</div></div>' } },
    bids: [{ bidder: 'rtbbidder', params: {} }] },
  { code: 'video-1', mediaTypes: { video: { context: 'instream', playerSize: [[640, 480]], mimes: ['video/mp4'], protocols: [2, 3, 7], maxduration: 30, linearity: 1 } },
    bids: [{ bidder: 'billow_rtb25', params: { endpoint: CFG.bidUrl, placementId: 'video-1' } }] },
];
window.pbjs = window.pbjs || { que: [] };
pbjs.que.push(() => {
  pbjs.setConfig({
    cache: { useLocal: true },
    s2sConfig: { accountId: 'pub-1', bidders: ['rtbbidder'], adapter: 'prebidServer', enabled: true, timeout: 2000,
                 endpoint: { p1Consent: CFG.bidUrl, noP1Consent: CFG.bidUrl } },
  });
  for (const e of ['bidResponse', 'noBid', 'bidderError', 'bidWon', 'adRenderSucceeded', 'adRenderFailed', 'bidRejected'])
    pbjs.onEvent(e, (d) => log(e, { adUnitCode: d && (d.adUnitCode || (d.bid && d.bid.adUnitCode)), bidder: d && (d.bidderCode || d.bidder), reason: d && (d.reason || d.message), mediaType: d && d.mediaType, cpm: d && d.cpm }));
  pbjs.addAdUnits(units);
  pbjs.requestBids({ timeout: 3000, bidsBackHandler: async () => {
    try {
      for (const u of units) {
        const b = pbjs.getHighestCpmBids(u.code)[0];
        if (b) result.bids[u.code] = { bidder: b.bidderCode, mediaType: b.mediaType, cpm: b.cpm, currency: b.currency, creativeId: b.creativeId, adId: b.adId,
          native: b.native && b.native.ortb ? b.native.ortb : undefined, hasVastXml: !!b.vastXml, vastUrl: b.vastUrl || null };
      }
      for (const code of ['banner-1', 'native-1']) {
        const b = result.bids[code];
        if (!b) continue;
        const frame = document.getElementById('f-' + code);
        pbjs.renderAd(frame.contentDocument, b.adId);
      }
      const v = pbjs.getHighestCpmBids('video-1')[0];
      if (v) {
        // What a player does with a VAST: fetch it, start the ad, call the Impression URL.
        const xml = v.vastXml || await (await fetch(v.vastUrl)).text();
        const doc = new DOMParser().parseFromString(xml, 'text/xml');
        const imp = doc.querySelector('Impression');
        const media = doc.querySelector('MediaFile');
        result.rendered['video-1'] = { version: doc.documentElement.getAttribute('version'), impression: !!imp, mediaFile: media && media.textContent.trim() };
        document.getElementById('video-1').textContent = 'VAST ' + result.rendered['video-1'].version + ' → ' + (media ? media.getAttribute('type') + ' ' + media.textContent.trim() : 'no media');
        pbjs.markWinningBidAsUsed({ adId: v.adId, events: true });
        if (imp) await fetch(imp.textContent.trim(), { mode: 'no-cors', credentials: 'include' });
      }
      await new Promise((r) => setTimeout(r, 1500));
      // Click the rendered banner: its link is the bidder's signed click URL.
      const outer = document.getElementById('f-banner-1').contentDocument;
      const inner = outer.querySelector('iframe');
      const link = (inner && inner.contentDocument ? inner.contentDocument : outer).querySelector('a');
      result.rendered['banner-1'] = { link: link ? link.href : null };
      // A click is a navigation to that URL (here a beacon: the landing page is not on this machine).
      if (link) await new Promise((r) => { const img = new Image(); img.onload = img.onerror = r; img.src = link.href; });
      const nouter = document.getElementById('f-native-1').contentDocument;
      const ninner = nouter.querySelector('iframe');
      const ndoc = ninner && ninner.contentDocument ? ninner.contentDocument : nouter;
      result.rendered['native-1'] = { html: ndoc.body ? ndoc.body.innerHTML.slice(0, 2000) : '' };
    } catch (e) { result.errors.push(String(e && e.stack || e)); }
    done();
  } });
});
setTimeout(done, 12000);
</script></body></html>`;
}
