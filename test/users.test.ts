import { describe, expect, it } from 'vitest';
import { trackableIfa } from '../src/users/users.js';

/**
 * The device's advertising id is the user key of last resort (after user.id and buyeruid). A
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
});
