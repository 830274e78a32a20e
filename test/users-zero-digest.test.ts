// A device limiting ad tracking sends the all-zero advertising id, which an SDK or exchange that
// hashes ids sends as the hash of zeros: a UUID of 32 hex digits (MD5) or 40 or 64 (SHA-1, SHA-256)
// that passed as a real id, so every such device was one user (review F4: 100 devices, cap 1, 1 bid;
// one shared profile).
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { trackableIfa, userIdsOf } from '../src/users/users.js';

const ZERO_FORMS = ['00000000-0000-0000-0000-000000000000', '00000000000000000000000000000000'];
const digests = ZERO_FORMS.flatMap((z) => [z, z.toUpperCase()]).flatMap((z) => ['md5', 'sha1', 'sha256'].map((alg) => createHash(alg).update(z).digest('hex')));

describe('users-zero-digest: the hash of the all-zero advertising id is no id', () => {
  it('the review figures are among the digests', () => {
    expect(digests).toContain('9f89c84a559f573636a47ff8daed0d33');
    expect(digests).toContain('b602d594afd2b0b327e07a06f36ca6a7e42546d0');
  });

  it('as device.ifa, in either letter case, an MD5 with or without UUID dashes', () => {
    for (const d of digests) {
      expect(trackableIfa({ ifa: d, lmt: 0 }), d).toBe('');
      expect(trackableIfa({ ifa: d.toUpperCase() }), d).toBe('');
      if (d.length === 32) expect(trackableIfa({ ifa: `${d.slice(0, 8)}-${d.slice(8, 12)}-${d.slice(12, 16)}-${d.slice(16, 20)}-${d.slice(20)}` }), d).toBe('');
    }
    // A real hashed id is still an id.
    const real = createHash('sha1').update('6d92078a-8246-4ba4-ae5b-76104861e7dc').digest('hex');
    expect(trackableIfa({ ifa: real })).toBe(real);
  });

  it('the next id is the key instead: an extended id, else the exchange user.id; an extended id or buyeruid that is such a digest is passed over', () => {
    const rank = new Map([['pubcid.org', 0]]);
    const userIdOf = (req: never, exchange: string, eidRank: Map<string, number>) => {
      const ids: string[] = [];
      userIdsOf(req, exchange, eidRank, ids);
      return ids.join(' ');
    };
    for (const d of digests) {
      const req = (user: object) => ({ id: 'r', imp: [], device: { ifa: d }, user }) as never;
      expect(userIdOf(req({ id: 'exch-user-7' }), 'ex', rank)).toBe('x:ex:exch-user-7');
      expect(userIdOf(req({ id: 'exch-user-7', eids: [{ source: 'pubcid.org', uids: [{ id: d.toUpperCase() }] }] }), 'ex', rank)).toBe('x:ex:exch-user-7');
      expect(userIdOf(req({ buyeruid: d, id: 'exch-user-7' }), 'ex', rank)).toBe('x:ex:exch-user-7');
    }
  });
});
