import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { loadPolicies, PolicyError } from '../src/config/policies.js';
import { connectFleetRedis } from '../src/ledger/open.js';

/** The PolicyError that loading `dir` throws (failing the test if it loads). */
function loadError(dir: string): PolicyError {
  let err: unknown;
  try {
    loadPolicies(dir);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(PolicyError);
  return err as PolicyError;
}

describe('policy loading reports every problem at once', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a file given as the policy folder is said to be one, not as three files missing from it', () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-file-'));
    const file = join(dir, 'campaigns.yaml');
    writeFileSync(file, 'campaigns: []\n');
    expect(loadError(file).problems).toEqual([`policy directory ${file} is a file, not a folder`]);
  });

  it("YAML's .inf and .nan, numbers the schema refuses, are shown as what was read", () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-inf-'));
    cpSync('policies', dir, { recursive: true });
    const campaigns = readFileSync(join(dir, 'campaigns.yaml'), 'utf8');
    writeFileSync(join(dir, 'campaigns.yaml'), campaigns.replace(/maxBidCpmUsd: \d[\d.]*/, 'maxBidCpmUsd: .inf').replace(/maxBidCpmUsd: \d[\d.]*/, 'maxBidCpmUsd: .nan'));
    const problems = loadError(dir).problems;
    expect(problems).toContain('campaigns.yaml: /campaigns/0/maxBidCpmUsd must be number (got Infinity)');
    expect(problems).toContain('campaigns.yaml: /campaigns/1/maxBidCpmUsd must be number (got NaN)');
  });

  it('a file that is not a mapping at its top is said to be empty, a list or a lone value', () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-top-'));
    cpSync('policies', dir, { recursive: true });
    writeFileSync(join(dir, 'bidder.yaml'), '- a\n- b\n');
    writeFileSync(join(dir, 'campaigns.yaml'), '');
    writeFileSync(join(dir, 'currency.yaml'), 'hello\n');
    expect(loadError(dir).problems).toEqual([
      'campaigns.yaml: empty: it must hold a mapping (campaigns: [...])',
      'currency.yaml: must hold a mapping of keys at its top, not a string',
      'bidder.yaml: must hold a mapping of keys at its top, not a list',
    ]);
  });

  it('lists schema problems of one file together with cross-file problems of the others', () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-'));
    cpSync('policies', dir, { recursive: true });
    // campaigns.yaml breaks its schema; exchanges.yaml is valid alone but names a currency
    // currency.yaml has no rate for; bidder.yaml has an unknown setting.
    writeFileSync(join(dir, 'campaigns.yaml'), readFileSync(join(dir, 'campaigns.yaml'), 'utf8').replace('maxBidCpmUsd: 25', 'maxBidCpmUsd: -1'));
    writeFileSync(join(dir, 'exchanges.yaml'), 'exchanges:\n  default:\n    currency: SEK\n');
    writeFileSync(join(dir, 'bidder.yaml'), 'port: 8080\nturbo: true\n');
    const err = loadError(dir);
    const problems = err.problems;
    expect(problems.some((p) => p.startsWith('campaigns.yaml') && p.includes('maxBidCpmUsd'))).toBe(true);
    expect(problems.some((p) => p.includes('currency SEK has no rate'))).toBe(true);
    expect(problems.some((p) => p.includes('bidder.yaml') && p.includes('turbo'))).toBe(true);
    expect(err.message.split('\n').length).toBe(problems.length + 1);
  });

  it('names every allowIps entry that is neither an IP address nor a CIDR range', () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-'));
    cpSync('policies', dir, { recursive: true });
    writeFileSync(join(dir, 'exchanges.yaml'), 'exchanges:\n  default:\n    allowIps: ["203.0.113.0/24", "exchange.example", "10.0.0.0/40"]\n');
    const { problems } = loadError(dir);
    expect(problems).toContain("exchanges.yaml: /exchanges/default/allowIps/1 'exchange.example' is not an IP address or CIDR range");
    expect(problems).toContain("exchanges.yaml: /exchanges/default/allowIps/2 '10.0.0.0/40' has a prefix length that is not 0-32");
    expect(problems.some((p) => p.includes('203.0.113.0/24'))).toBe(false);
  });

  it('refuses creatives no answer could be built from', () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-'));
    cpSync('policies', dir, { recursive: true });
    const base = { title: 't', landingUrl: 'https://a.example/' };
    const creatives = [
      { ...base, id: 'a&b', format: 'banner', w: 1, h: 1 },
      { ...base, id: 'v1', format: 'video', durationSec: 5, mimes: ['video/mp4'] },
      { ...base, id: 'v2', format: 'video', durationSec: 5, mediaFiles: [{ url: 'https://a.example/v.mp4', mime: 'video/mp4' }], mimes: ['video/webm'] },
      { ...base, id: 'n1', format: 'native', adm: '<b>x</b>' },
      { ...base, id: 'b1', format: 'banner', w: 1, h: 1, native: { data: { sponsored: 'x' } }, mediaFiles: [{ url: 'https://a.example/v.mp4', mime: 'video/mp4' }] },
      { ...base, id: 'b2', format: 'banner', w: 1, h: 1, btype: 3 },
      { ...base, id: 'b3', format: 'banner', w: 1, h: 1, mime: 'image/png' },
    ];
    const problemsOf = (list: unknown[]): string[] => {
      const doc = { campaigns: [{ id: 'c', advertiser: 'a', adomain: ['a.example'], goal: { type: 'cpm', valueUsd: 1 }, budget: { dailyUsd: 1 }, maxBidCpmUsd: 1, creatives: list }] };
      writeFileSync(join(dir, 'campaigns.yaml'), JSON.stringify(doc));
      try {
        loadPolicies(dir);
      } catch (e) {
        return (e as PolicyError).problems;
      }
      return [];
    };
    // A schema problem (checked first, alone) and the cross checks of a schema-valid file.
    expect(problemsOf(creatives.slice(0, 1)).some((p) => p.includes('/creatives/0/id must match pattern'))).toBe(true);
    const problems = problemsOf(creatives.slice(1));
    expect(problems.some((p) => p.includes('(v1): video creatives need durationSec and mediaFiles'))).toBe(true);
    expect(problems.some((p) => p.includes('(v2): mimes video/webm have no media file'))).toBe(true);
    expect(problems.some((p) => p.includes('(n1): adm (own markup) is for banner creatives'))).toBe(true);
    expect(problems.some((p) => p.includes('(b1): native assets are for native creatives'))).toBe(true);
    expect(problems.some((p) => p.includes('(b1): mediaFiles is for video and audio creatives'))).toBe(true);
    expect(problems.some((p) => p.includes('(b2): btype says what kind of banner an adm is'))).toBe(true);
    expect(problems.some((p) => p.includes('(b3): mime says what type of content an adm is'))).toBe(true);
  });

  it('names each creative text field holding a control character XML cannot carry (tab, LF and CR are fine)', () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-'));
    cpSync('policies', dir, { recursive: true });
    const base = { format: 'banner', w: 300, h: 250, landingUrl: 'https://a.example/' };
    const creatives = [
      { ...base, id: 'ok', title: 'Tab\there,\r\nnew line', keywords: ['a\tb'] },
      { ...base, id: 'vt', title: 'Seven seconds\u000b', keywords: ['fine', 'nul\u0000'] },
      { id: 'nat', format: 'native', title: 't', landingUrl: 'https://a.example/', native: { data: { sponsored: 'Acme', ctatext: 'Go\u001f' } } },
    ];
    const doc = { campaigns: [{ id: 'c', advertiser: 'a', adomain: ['a.example'], goal: { type: 'cpm', valueUsd: 1 }, budget: { dailyUsd: 1 }, maxBidCpmUsd: 1, creatives }] };
    writeFileSync(join(dir, 'campaigns.yaml'), JSON.stringify(doc));
    expect(loadError(dir).problems).toEqual([
      'campaigns.yaml: /campaigns/0 (c) /creatives/1 (vt): title holds the control character U+000B at character 14, which no VAST (XML) document can carry; only tab, LF and CR may be there',
      'campaigns.yaml: /campaigns/0 (c) /creatives/1 (vt): keywords/1 holds the control character U+0000 at character 4, which no VAST (XML) document can carry; only tab, LF and CR may be there',
      'campaigns.yaml: /campaigns/0 (c) /creatives/2 (nat): native.data.ctatext holds the control character U+001F at character 3, which no VAST (XML) document can carry; only tab, LF and CR may be there',
    ]);
  });

  it('refuses an imageEmbedding value far outside the range the models were trained on, naming the creative and the value', () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-'));
    cpSync('policies', dir, { recursive: true });
    const base = { format: 'banner', w: 300, h: 250, title: 't', landingUrl: 'https://a.example/' };
    // ×100 scored a pCTR of exactly 1 on lr-v3 and was bid on at the campaign's cap; 2 is the bound itself.
    const creatives = [
      { ...base, id: 'big', imageEmbedding: [0.1, -0.2, 30, 0.4, 0, 0.5, -0.6, 0.7] },
      { ...base, id: 'neg', imageEmbedding: [0, 0, 0, 0, 0, 0, 0, -1e39] },
      { ...base, id: 'edge', imageEmbedding: [2, -2, 1, -1, 0, 0.5, -0.5, 1.999] },
    ];
    const doc = { campaigns: [{ id: 'c', advertiser: 'a', adomain: ['a.example'], goal: { type: 'cpm', valueUsd: 1 }, budget: { dailyUsd: 1 }, maxBidCpmUsd: 1, creatives }] };
    writeFileSync(join(dir, 'campaigns.yaml'), JSON.stringify(doc));
    expect(loadError(dir).problems).toEqual([
      'campaigns.yaml: /campaigns/0 (c) /creatives/0 (big): imageEmbedding/2 is 30, outside [-2, 2]: the models were trained on values in [-1, 1]',
      'campaigns.yaml: /campaigns/0 (c) /creatives/1 (neg): imageEmbedding/7 is -1e+39, outside [-2, 2]: the models were trained on values in [-1, 1]',
    ]);
  });

  it("takes a banner adm's declared mime, canonical, as banner.mimes are compared", () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-'));
    cpSync('policies', dir, { recursive: true });
    const cr = { id: 'img-1', format: 'banner', w: 300, h: 250, title: 't', landingUrl: 'https://a.example/', adm: '<a href="${CLICK_URL}"><img src="https://a.example/a.jpg"></a>', mime: 'image/JPG' };
    const doc = { campaigns: [{ id: 'c', advertiser: 'a', adomain: ['a.example'], goal: { type: 'cpm', valueUsd: 1 }, budget: { dailyUsd: 1 }, maxBidCpmUsd: 1, creatives: [cr] }] };
    writeFileSync(join(dir, 'campaigns.yaml'), JSON.stringify(doc));
    expect(loadPolicies(dir).campaigns[0].creatives[0].mime).toBe('image/jpeg');
    // Type and subtype in any case, with parameters, as RFC 2045 writes them.
    writeFileSync(join(dir, 'campaigns.yaml'), JSON.stringify({ campaigns: [{ ...doc.campaigns[0], creatives: [{ ...cr, mime: 'TEXT/HTML; charset=utf-8' }] }] }));
    expect(loadPolicies(dir).campaigns[0].creatives[0].mime).toBe('text/html');
  });

  it('names categories declared for a taxonomy that is not a cattax number, or for taxonomy 1, which cat holds', () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-'));
    cpSync('policies', dir, { recursive: true });
    const campaign = (id: string, catByTaxonomy: unknown) => ({ id, advertiser: 'a', adomain: ['a.example'], cat: ['IAB2'], catByTaxonomy, goal: { type: 'cpm', valueUsd: 1 }, budget: { dailyUsd: 1 }, maxBidCpmUsd: 1, creatives: [{ id: `${id}-1`, format: 'banner', w: 1, h: 1, title: 't', landingUrl: 'https://a.example/' }] });
    writeFileSync(join(dir, 'campaigns.yaml'), JSON.stringify({ campaigns: [campaign('c1', { content3: ['1'] })] }));
    expect(loadError(dir).problems).toEqual(['campaigns.yaml: /campaigns/0/catByTaxonomy key \'content3\' must match pattern "^[1-9][0-9]*$"']);
    writeFileSync(join(dir, 'campaigns.yaml'), JSON.stringify({ campaigns: [campaign('c1', { 7: ['1'] }), campaign('c2', { 1: ['IAB2'] })] }));
    expect(loadError(dir).problems).toEqual(['campaigns.yaml: /campaigns/1 (c2): catByTaxonomy 1 is IAB Content Category Taxonomy 1.0, which `cat` holds']);
  });

  it('a value that fails its schema hides no cross check of the values that pass, in any file', () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-'));
    cpSync('policies', dir, { recursive: true });
    const edit = (name: string, f: (t: string) => string) => writeFileSync(join(dir, name), f(readFileSync(join(dir, name), 'utf8')));
    // Campaign 0 has a schema problem beside a flight ending before it starts; campaign 1 passes,
    // but takes campaign 0's id, a creative id of it, and a country that is none; campaign 2's
    // catByTaxonomy is a string, whose '1' is checked no further.
    edit('campaigns.yaml', (t) =>
      t
        .replace('maxBidCpmUsd: 25', 'maxBidCpmUsd: "25"')
        .replace('start: "2026-01-01", end: "2027-12-31"', 'start: "2027-01-01", end: "2026-12-31"')
        .replace('id: volt-bank', 'id: acme-shoes')
        .replace('id: volt-320x50', 'id: acme-300x250')
        .replace('deviceTypes: [1, 4, 5]', 'deviceTypes: [1, 4, 5]\n      countries: [XX]')
        .replace('maxBidCpmUsd: 30', 'maxBidCpmUsd: 30\n    catByTaxonomy: "11"'),
    );
    // demo-eu has a schema problem and a currency without a rate; demo-secure an address that is
    // none, in a currency whose rate is reported (not as missing).
    edit('exchanges.yaml', (t) => t.replace('    currency: EUR\n', '    currency: SEK\n    gzip: "yes"\n').replace('allowIps: ["127.0.0.1", "::1"]', 'allowIps: ["127.0.0.1", "300.1.1.1"]\n    currency: GBP'));
    edit('currency.yaml', (t) => t.replace('GBP: 0.79', 'GBP: "x"'));
    // The ops listener on the bid port is named beside the settings' schema problems; publicUrl's
    // schema problem alone.
    edit('bidder.yaml', (t) => t + 'publicUrl: 5\nmaxImps: "x"\nopsPort: 8080\n');
    const bidder = 'bidder.yaml (with flags and environment)';
    expect(loadError(dir).problems).toEqual([
      'campaigns.yaml: /campaigns/0/maxBidCpmUsd must be number',
      'campaigns.yaml: /campaigns/2/catByTaxonomy must be object',
      'exchanges.yaml: /exchanges/demo-eu/gzip must be boolean',
      'currency.yaml: /ratesPerUsd/GBP must be number',
      `${bidder}: /maxImps must be integer`,
      `${bidder}: /publicUrl must be string`,
      `${bidder} /opsPort: 8080 is the bid port too; give the operations listener a port of its own, or 0 to share the bid port`,
      'exchanges.yaml: /exchanges/demo-eu/currency SEK has no rate in currency.yaml',
      "exchanges.yaml: /exchanges/demo-secure/allowIps/1 '300.1.1.1' is not an IP address or CIDR range",
      'campaigns.yaml: /campaigns/0 (acme-shoes): budget.start is after budget.end',
      'campaigns.yaml: /campaigns/1 (acme-shoes): duplicate campaign id',
      "campaigns.yaml: /campaigns/1 (acme-shoes): targeting.countries XX are not ISO 3166-1 country codes (alpha-3 as OpenRTB's geo.country, or alpha-2)",
      'campaigns.yaml: /campaigns/1 (acme-shoes) /creatives/0 (acme-300x250): duplicate creative id',
    ]);
  });

  it('refuses settings that would start a bidder that cannot work as asked, all at once', () => {
    let err: PolicyError | undefined;
    try {
      loadPolicies('policies', { publicUrl: 'http://', port: 8080, opsPort: 8080, tls: { keyFile: 'k.pem', certFile: '' }, fleetSize: 4 });
    } catch (e) {
      err = e as PolicyError;
    }
    expect(err).toBeInstanceOf(PolicyError);
    const text = err!.problems.join('\n');
    expect(err!.problems).toHaveLength(4);
    for (const field of ['/publicUrl', '/opsPort', '/tls:', '/fleetSize']) expect(text).toContain(field);
    expect(() => loadPolicies('policies', { publicUrl: 'https://bidder.example', port: 8080, opsPort: 9090, fleetSize: 4, ledger: { redisUrl: 'redis://127.0.0.1:6379' } as never })).not.toThrow();
  });

  it("takes TLS files this host cannot read: they are serve's to read, and report, train, simulate and reloads load the same policies", () => {
    const missing = join(tmpdir(), `no-such-${process.pid}`);
    expect(() => loadPolicies('policies', { tls: { keyFile: join(missing, 'key.pem'), certFile: join(missing, 'cert.pem') } })).not.toThrow();
  });

  it('names a Redis URL that is not one, and a connection that fails says why', async () => {
    let err: PolicyError | undefined;
    try {
      loadPolicies('policies', { ledger: { redisUrl: 'localhost:6379' } as never });
    } catch (e) {
      err = e as PolicyError;
    }
    expect(err?.problems).toEqual(['bidder.yaml (with flags and environment) /ledger/redisUrl: "localhost:6379" is not a redis:// or rediss:// (TLS) URL with a host']);
    expect(() => loadPolicies('policies', { ledger: { redisUrl: 'rediss://cache.example:6380/2' } as never })).not.toThrow();
    const settings = loadPolicies('policies', { ledger: { redisUrl: 'redis://127.0.0.1:1/0', commandTimeoutMs: 1000 } as never }).settings;
    await expect(connectFleetRedis(settings, pino({ level: 'silent' }))).rejects.toThrow('Redis ledger: cannot connect to redis://127.0.0.1:1/0: connect ECONNREFUSED 127.0.0.1:1');
  });

  it('names deadlines that contradict each other, all at once', () => {
    let err: PolicyError | undefined;
    try {
      loadPolicies('policies', { minTmaxMs: 500, maxTmaxMs: 400, defaultTmaxMs: 300, batcher: { maxBatchRows: 256, maxQueueDelayUs: 300_000 } });
    } catch (e) {
      err = e as PolicyError;
    }
    const text = err!.problems.join('\n');
    expect(err!.problems).toHaveLength(3);
    for (const field of ['/minTmaxMs', '/defaultTmaxMs', '/batcher/maxQueueDelayUs']) expect(text).toContain(field);
  });

  it("takes a campaign's privacyUrl over https only, and gives it to its native creatives", () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-'));
    cpSync('policies', dir, { recursive: true });
    const creative = (id: string, format: string) => ({ id, format, title: 't', landingUrl: 'https://a.example/', ...(format === 'banner' ? { w: 1, h: 1 } : {}) });
    const campaign = (privacyUrl: string) => ({ id: 'c1', advertiser: 'a', adomain: ['a.example'], cat: ['IAB2'], privacyUrl, goal: { type: 'cpm', valueUsd: 1 }, budget: { dailyUsd: 1 }, maxBidCpmUsd: 1, creatives: [creative('n1', 'native'), creative('b1', 'banner')] });
    for (const bad of ['http://a.example/privacy', 'https://', 'https://a.example/privacy notes', 'a.example/privacy']) {
      writeFileSync(join(dir, 'campaigns.yaml'), JSON.stringify({ campaigns: [campaign(bad)] }));
      expect(loadError(dir).problems, bad).toEqual(['campaigns.yaml: /campaigns/0/privacyUrl must match pattern "^https://[^\\s/?#]+[^\\s]*$"']);
    }
    writeFileSync(join(dir, 'campaigns.yaml'), JSON.stringify({ campaigns: [campaign('https://a.example/privacy?lang=en')] }));
    const [n1, b1] = loadPolicies(dir).campaigns[0].creatives;
    expect(n1.privacyUrl).toBe('https://a.example/privacy?lang=en');
    expect(b1.privacyUrl).toBeUndefined();
  });

  it('names flight dates that are not days of the calendar', () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-'));
    cpSync('policies', dir, { recursive: true });
    const file = join(dir, 'campaigns.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('start: "2026-01-01", end: "2027-12-31"', 'start: "2026-02-30", end: "2026-13-45"'));
    const err = loadError(dir);
    expect(err.problems.filter((p) => /budget\.(start|end) .* is not a day of the calendar/.test(p))).toHaveLength(2);
  });

  it('names a targeted category longer than a request category is read (64 characters): it would load and never match', () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-'));
    cpSync('policies', dir, { recursive: true });
    const file = join(dir, 'campaigns.yaml');
    const good = readFileSync(file, 'utf8');
    const long = 'publisher-taxonomy:lifestyle/fashion/footwear/womens-running-shoes-and-trail';
    writeFileSync(file, good.replace('      deviceTypes: [1, 4, 5]\n', `      deviceTypes: [1, 4, 5]\n      categories: [IAB18, "${long}"]\n`));
    const err = loadError(dir);
    expect(err.problems.join('\n')).toMatch(/targeting\/categories\/1 must NOT have more than 64 characters/);
    expect(err.problems).toHaveLength(1);
    writeFileSync(file, good.replace('      deviceTypes: [1, 4, 5]\n', `      deviceTypes: [1, 4, 5]\n      categories: [IAB18, "${long.slice(0, 64)}"]\n`));
    expect(() => loadPolicies(dir)).not.toThrow();
  });

  it('names targeted countries that are not ISO 3166-1 codes, and takes alpha-2 and alpha-3 in any case', () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-'));
    cpSync('policies', dir, { recursive: true });
    const file = join(dir, 'campaigns.yaml');
    const good = readFileSync(file, 'utf8');
    writeFileSync(file, good.replace('countries: [USA, CAN]', 'countries: [USA, UK, GER, ca]'));
    const err = loadError(dir);
    expect(err.problems.join('\n')).toMatch(/targeting\.countries UK, GER are not ISO 3166-1 country codes/);
    expect(err.problems).toHaveLength(1);
    writeFileSync(file, good.replace('countries: [USA, CAN]', 'countries: [usa, GB, de, Fra]'));
    expect(() => loadPolicies(dir)).not.toThrow();
  });

  it('refuses an hourly cap where no pacer holds it: with pacing even, or under pacer curve', () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-'));
    cpSync('policies', dir, { recursive: true });
    const file = join(dir, 'campaigns.yaml');
    const good = readFileSync(file, 'utf8');
    const capped = (pacing: string) => good.replace('start: "2026-01-01", end: "2027-12-31"', `start: "2026-01-01", end: "2027-12-31", pacing: ${pacing}, hourlyCapShare: 0.1`);
    writeFileSync(file, capped('even'));
    expect(loadError(dir).problems).toEqual([expect.stringMatching(/budget\.hourlyCapShare is not held with pacing: even .*; pace max-value or asap, or remove the cap$/)]);
    writeFileSync(file, capped('asap'));
    expect(() => loadPolicies(dir)).not.toThrow();
    writeFileSync(join(dir, 'bidder.yaml'), `${readFileSync(join(dir, 'bidder.yaml'), 'utf8')}pacer: curve\n`);
    expect(loadError(dir).problems).toEqual([expect.stringMatching(/budget\.hourlyCapShare is not held by pacer: curve \(bidder\.yaml\); run pacer: value, or remove the cap$/)]);
  });

  it('loads the demo set', () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-'));
    const p = loadPolicies('policies');
    expect(p.campaigns.length).toBeGreaterThan(0);
    expect(Object.isFrozen(p.settings)).toBe(true);
  });

  // It set `publicUrl: http://127.0.0.1:8080`, the default, which the bidder reads as unset and
  // replaces by the address, port and scheme it listens on (src/bidder.ts): written out, it read as
  // a URL fixed whatever PORT or tls said.
  it('the demo bidder.yaml leaves publicUrl out, as it follows the port and TLS', () => {
    expect(readFileSync('policies/bidder.yaml', 'utf8')).not.toMatch(/^publicUrl:/m);
  });
});

describe('frequency caps the store can enforce', () => {
  it('a frequency cap above the store limit is refused at policy load (count > 32 or a window over 7 days could never trigger)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'policies-'));
    try {
      cpSync('policies', dir, { recursive: true });
      const file = join(dir, 'campaigns.yaml');
      writeFileSync(file, readFileSync(file, 'utf8').replace('frequencyCap: { count: 20, windowSec: 3600 }', 'frequencyCap: { count: 50, windowSec: 691200 }'));
      const problems = loadError(dir).problems.join('\n');
      expect(problems).toMatch(/frequencyCap\/count.*<= 32/);
      expect(problems).toMatch(/frequencyCap\/windowSec.*<= 604800/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
