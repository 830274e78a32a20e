import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS } from '../src/config/settings.js';
import { createPrivacy } from '../src/eligibility/privacy.js';
import { createMetrics } from '../src/metrics/metrics.js';
import type { Campaign } from '../src/types.js';
import { primaryUserKey, USER_KEY_CHARS, userKeysOf } from '../src/users/keys.js';
import { createUsers, trackableIfa } from '../src/users/users.js';

/**
 * The device's advertising id is the user key after buyeruid, before user.id. A
 * device that limits ad tracking sends `lmt: 1`, and iOS and Android then send the all-zero id:
 * taken as a key, every such device would be one user, sharing one frequency cap and one profile.
 */
describe('the advertising id as a user key', () => {
  it('is used where tracking is not limited', () => {
    expect(trackableIfa({ ifa: '6d92078a-8246-4ba4-ae5b-76104861e7dc' })).toBe('6d92078a-8246-4ba4-ae5b-76104861e7dc');
    expect(trackableIfa({ ifa: '6d92078a-8246-4ba4-ae5b-76104861e7dc', lmt: 0 })).toBe('6d92078a-8246-4ba4-ae5b-76104861e7dc');
  });

  it('is not used under lmt 1, nor when it is the all-zero id, nor when it is not a string', () => {
    expect(trackableIfa({ ifa: '6d92078a-8246-4ba4-ae5b-76104861e7dc', lmt: 1 })).toBe('');
    expect(trackableIfa({ ifa: '00000000-0000-0000-0000-000000000000' })).toBe('');
    expect(trackableIfa({ ifa: '00000000000000000000000000000000', lmt: 0 })).toBe('');
    expect(trackableIfa({ ifa: 12345 })).toBe('');
    expect(trackableIfa({ ifa: '' })).toBe('');
    expect(trackableIfa(undefined)).toBe('');
  });

  it('is an id of the forms advertising ids have: a UUID (dashes or not: one form), an OAID of 16 hex digits, a SHA-1 or SHA-256 hash', () => {
    const ifa = '6d92078a-8246-4ba4-ae5b-76104861e7dc';
    expect(trackableIfa({ ifa: ifa.replaceAll('-', '').toUpperCase() })).toBe(ifa);
    // OpenRTB 2.5's own example: an IFA hashed with SHA-1.
    expect(trackableIfa({ ifa: 'AA000DFE74168477C70D291f574D344790E0BB11' })).toBe('aa000dfe74168477c70d291f574d344790e0bb11');
    expect(trackableIfa({ ifa: 'f'.repeat(64) })).toBe('f'.repeat(64));
    expect(trackableIfa({ ifa: '0'.repeat(40) })).toBe('');
    // Xiaomi's OAID: 16 hex digits (f97af07 took it for a placeholder: a capped campaign bought the device again).
    expect(trackableIfa({ ifa: '6F5D5E8B2C4A3B1D' })).toBe('6f5d5e8b2c4a3b1d');
    expect(trackableIfa({ ifa: '0'.repeat(16) })).toBe('');
  });

  it('is not what a player or SDK sends in place of an id it lacks, which every such device would share', () => {
    for (const none of ['unknown', 'UNKNOWN', 'null', 'undefined', 'none', '{IFA}', '[DEVICE_ID]', '%%ADVERTISING_IDENTIFIER_PLAIN%%', '${IFA}', '__IFA__', 'ifa', 'test', '1234', '6d92078a-8246-4ba4-ae5b-76104861e7d', '6d92078a-8246-4ba4-ae5b-76104861e7dz']) {
      expect(trackableIfa({ ifa: none }), none).toBe('');
    }
  });

  it("of a kind its publisher or exchange issues (ifa_type ppid, sspid), is taken in any form that is an id", () => {
    // A DOOH screen's number, as the IAB's DOOH example sends it.
    expect(trackableIfa({ ifa: '1235461904', ifa_type: 'ppid' })).toBe('1235461904');
    expect(trackableIfa({ ifa: 'Screen-7', ext: { ifa_type: 'SSPID' } })).toBe('screen-7');
    expect(trackableIfa({ ifa: '1235461904', ifa_type: 'aaid' })).toBe('');
    for (const none of ['{IFA}', 'unknown', '0']) expect(trackableIfa({ ifa: none, ifa_type: 'ppid' }), none).toBe('');
  });
});

function makeUsers(settings = DEFAULT_SETTINGS) {
  return createUsers({ settings, campaigns: [], redis: null, secret: 's'.repeat(24), privacy: createPrivacy(), metrics: createMetrics({ exchanges: [], campaigns: [], defaults: false }), clock: () => 0, now: () => 0 });
}

describe('the user key', () => {
  it('is the most lasting id a request has: buyeruid, then the advertising id, then a listed extended id, then user.id', async () => {
    const users = makeUsers();
    // The first of the request's keys (src/users/keys.ts): the profile's and the event log's.
    const key = (r: object, exchange = 'a') => primaryUserKey(users.key(r as never, exchange));
    const ifa = '6d92078a-8246-4ba4-ae5b-76104861e7dc';
    const eids = [{ source: 'pubcid.org', uids: [{ id: 'c29b1f7a-6a0e', atype: 1 }] }];
    const all = key({ user: { id: 'x-1', buyeruid: 'b-1', eids }, device: { ifa } });
    // Seen again without the exchange's own id, or on another exchange with another: one user.
    expect(key({ user: { buyeruid: 'b-1' }, device: { ifa } })).toBe(all);
    expect(key({ user: { id: 'y-9', buyeruid: 'b-1' } }, 'b')).toBe(all);
    expect(key({ user: { id: 'x-1', eids }, device: { ifa } })).toBe(key({ device: { ifa } }));
    expect(key({ user: { id: 'x-1', eids } })).toBe(key({ user: { eids } }));
    // An advertising id that is no id hides none after it.
    expect(key({ user: { id: 'x-1', eids }, device: { ifa: '{IFA}' } })).toBe(key({ user: { eids } }));
    expect(key({ user: { id: 'x-1' }, device: { ifa: 'unknown' } })).toBe(key({ user: { id: 'x-1' } }));
    expect(key({ user: { id: 'x-1' } })).not.toBe('');
    expect(key({})).toBe('');
    await users.close();
  });

  it('takes the advertising id in one form: any letter case, spaces around it', async () => {
    const users = makeUsers();
    const ifa = 'AEBE52E7-03EE-455A-B3C4-E57283966239';
    const k = users.key({ device: { ifa } } as never, 'a');
    expect(users.key({ device: { ifa: ifa.toLowerCase() } } as never, 'b')).toBe(k);
    expect(users.key({ device: { ifa: ` ${ifa}\n` } } as never, 'a')).toBe(k);
    await users.close();
  });

  it("scopes an exchange's own user.id to the exchange; buyeruid, the advertising id and extended ids are shared", async () => {
    const users = makeUsers();
    const key = (user: object, exchange: string) => users.key({ user } as never, exchange);
    expect(key({ id: '1001' }, 'a')).toBe(key({ id: '1001' }, 'a'));
    expect(key({ id: '1001' }, 'a')).not.toBe(key({ id: '1001' }, 'b'));
    expect(key({ buyeruid: '1001' }, 'a')).toBe(key({ buyeruid: '1001' }, 'b'));
    const eids = [{ source: 'id5-sync.com', uids: [{ id: 'ID5*abc' }] }];
    expect(key({ eids }, 'a')).toBe(key({ eids }, 'b'));
    // The same string as another kind of id is another user.
    const hex = '6d92078a82464ba4ae5b76104861e7dc';
    expect(new Set([key({ id: hex }, 'a'), key({ buyeruid: hex }, 'a'), users.key({ device: { ifa: hex } } as never, 'a')]).size).toBe(3);
    await users.close();
  });

  it('knows a user by an extended id of a listed source (the first listed the request has), in OpenRTB 2.6 or 2.5 form', async () => {
    const users = makeUsers({ ...DEFAULT_SETTINGS, eidSources: ['uidapi.com', 'pubcid.org'] });
    const key = (user: object) => users.key({ user } as never, 'a');
    const pubcid = { source: 'PubCID.org', uids: [{ id: 'c29b1f7a', atype: 1 }] };
    const uid2 = { source: 'uidapi.com', uids: [{ id: 'A4AAAA', atype: 3 }] };
    const other = { source: 'example.com', uids: [{ id: 'c29b1f7a' }] };
    expect(key({ eids: [pubcid] })).not.toBe('');
    expect(key({ eids: [other, pubcid] })).toBe(key({ eids: [pubcid] }));
    expect(key({ ext: { eids: [pubcid] } })).toBe(key({ eids: [pubcid] }));
    expect(key({ eids: [pubcid, uid2] })).toBe(key({ eids: [uid2] }));
    // Unlisted sources, and what is no id, give no key.
    for (const eids of [[other], [{ source: 'pubcid.org', uids: [] }], [{ source: 'pubcid.org', uids: [{ id: 7 }] }], [{ uids: [{ id: 'x' }] }], 'pubcid.org', [null]]) {
      expect(key({ eids })).toBe('');
    }
    await users.close();
  });

  it('passes over an extended id that stands for no id, which every user without one would share', async () => {
    const users = makeUsers();
    const key = (user: object) => users.key({ user } as never, 'a');
    const id5 = (id: string, ext?: object) => ({ source: 'id5-sync.com', uids: [{ id, atype: 1, ext }] });
    const pubcid = { source: 'pubcid.org', uids: [{ id: 'c29b1f7a', atype: 1 }] };
    // ID5 without consent or after an opt-out; its A/B test's control group, the id withheld;
    // SharedID's opt-out value; an all-zero UUID; blanks.
    const none = [
      id5('0', { linkType: 0 }),
      id5(' 0 '),
      id5('', { linkType: 0, abTestingControlGroup: true }),
      id5('ID5*abc', { abTestingControlGroup: true }),
      { source: 'pubcid.org', uids: [{ id: '0'.repeat(26) }] },
      { source: 'adserver.org', uids: [{ id: '00000000-0000-0000-0000-000000000000' }] },
      { source: 'criteo.com', uids: [{ id: '  ' }] },
    ];
    for (const eid of none) expect(key({ eids: [eid] })).toBe('');
    // The next id the request has is the user's.
    expect(key({ eids: [id5('0'), pubcid] })).toBe(key({ eids: [pubcid] }));
    expect(key({ id: 'x-1', eids: [id5('0')] })).toBe(key({ id: 'x-1' }));
    expect(key({ eids: [id5('ID5*abc', { linkType: 2, abTestingControlGroup: false })] })).not.toBe('');
    await users.close();
  });

  it("passes over a buyeruid or user.id that stands for no id ('0', zeros, blanks), and takes the next id", async () => {
    const users = makeUsers();
    const key = (user: object) => users.key({ user } as never, 'a');
    const pubcid = { source: 'pubcid.org', uids: [{ id: 'c29b1f7a', atype: 1 }] };
    for (const none of ['0', '00000000-0000-0000-0000-000000000000', ' ', '']) {
      expect(key({ id: none })).toBe('');
      expect(key({ buyeruid: none })).toBe('');
      expect(key({ buyeruid: none, eids: [pubcid] })).toBe(key({ eids: [pubcid] }));
      expect(key({ buyeruid: none, id: 'x-1' })).toBe(key({ id: 'x-1' }));
    }
    // Ids that merely contain zeros are ids.
    expect(key({ id: '10' })).not.toBe('');
    // A word for none, or a macro left unexpanded, is no id either.
    for (const none of ['null', 'NULL', ' undefined ', 'unknown', 'None', 'nil', '{UID}', '[USER_ID]', '%%BUYERUID%%', '${BUYER_UID}']) {
      expect(key({ id: none }), none).toBe('');
      expect(key({ buyeruid: none, id: 'x-1' }), none).toBe(key({ id: 'x-1' }));
      expect(key({ eids: [{ source: 'pubcid.org', uids: [{ id: none }] }], id: 'x-1' }), none).toBe(key({ id: 'x-1' }));
    }
    expect(key({ id: 'nullable-7' })).not.toBe('');
    expect(key({ buyeruid: '0a' })).not.toBe(key({ buyeruid: '0b' }));
    await users.close();
  });
});

/**
 * Alone, the local store keeps at most frequencyMaxUsers users and drops first those whose caps
 * lapse first, by the windows of the catalog that serves: the one at start (freqcaps.json is
 * restored by it) and each reload's.
 */
describe('the frequency caps of a bidder alone', () => {
  const T0 = Date.parse('2026-06-01T00:00:00Z');
  const campaign = (id: string, windowSec?: number) => ({ id, frequencyCap: windowSec ? { count: 1, windowSec } : undefined }) as Campaign;

  function alone(o: { now: () => number; campaigns: Campaign[]; path: string; maxUsers: number; warnings?: string[] }) {
    return createUsers({
      settings: { ...DEFAULT_SETTINGS, frequencyMaxUsers: o.maxUsers },
      campaigns: o.campaigns,
      redis: null,
      secret: 's'.repeat(24),
      privacy: createPrivacy(),
      metrics: createMetrics({ exchanges: [], campaigns: [], defaults: false }),
      clock: o.now,
      now: () => 0,
      frequencyPath: o.path,
      logger: { warn: (_: object, msg: string) => void o.warnings?.push(msg) },
    });
  }

  it('restored from more users than it keeps, keeps the user whose cap holds over a later one seen only by an uncapped campaign', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'users-fc-'));
    const path = join(dir, 'freqcaps.json');
    try {
      let now = T0;
      const campaigns = [campaign('capped', 86_400), campaign('open')];
      const a = alone({ now: () => now, campaigns, path, maxUsers: 10 });
      a.setCampaigns(campaigns);
      await a.frequency.record('capped-user', 'capped');
      now += 10_000;
      await a.frequency.record('uncapped-user', 'open');
      await a.close();
      now += 60_000;
      const warnings: string[] = [];
      const b = alone({ now: () => now, campaigns, path, maxUsers: 1, warnings });
      b.setCampaigns(campaigns);
      expect([b.count('capped-user', 'capped', 86_400), b.count('uncapped-user', 'open', 86_400)]).toEqual([1, 0]);
      expect(warnings).toEqual(['frequency caps file holds more users than the store keeps: those whose impressions lapse first were dropped']);
      await b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a reload that shortens a cap drops its users before users whose caps still hold", async () => {
    let now = T0;
    const users = alone({ now: () => now, campaigns: [campaign('a', 86_400), campaign('b', 86_400)], path: join(tmpdir(), 'users-fc-unsaved', 'none.json'), maxUsers: 2 });
    users.setCampaigns([campaign('a', 86_400), campaign('b', 86_400)]);
    await users.frequency.record('u-a', 'a');
    now += 60_000;
    await users.frequency.record('u-b', 'b');
    now += 2 * 3600_000;
    users.setCampaigns([campaign('a', 86_400), campaign('b', 3600)]);
    await users.frequency.record('u-c', 'a');
    expect([users.count('u-a', 'a', 86_400), users.count('u-b', 'b', 86_400), users.count('u-c', 'a', 86_400)]).toEqual([1, 0, 1]);
  });
});

describe('a request\'s user keys in one string', () => {
  it('are 16-character keys one after the other, in the one-key form of the versions before', async () => {
    const users = makeUsers();
    const eids = [{ source: 'pubcid.org', uids: [{ id: 'c29b1f7a-6a0e', atype: 1 }] }];
    const all = users.key({ user: { id: 'x-1', buyeruid: 'b-1', eids }, device: { ifa: '6d92078a-8246-4ba4-ae5b-76104861e7dc' } } as never, 'a');
    // What the version before accepted as `uk`: a notice of this bid reaching one of its
    // processes in a rolling deploy settles there (with '.' between the keys it was refused).
    expect(all).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    // buyeruid, ifa, the extended id; the exchange's user.id only where nothing comes before it.
    expect(all).toHaveLength(3 * USER_KEY_CHARS);
    const keys = userKeysOf(all);
    expect(keys).toHaveLength(3);
    expect(primaryUserKey(all)).toBe(keys[0]);
    expect(keys[0]).toBe(users.key({ user: { buyeruid: 'b-1' } } as never, 'a'));
    // One key, or a string that is not whole keys (a test's 'u1'), is one key.
    expect(userKeysOf(keys[1])).toEqual([keys[1]]);
    expect(userKeysOf('u1')).toEqual(['u1']);
    expect(primaryUserKey('u1')).toBe('u1');
  });
});
