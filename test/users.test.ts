import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS } from '../src/config/settings.js';
import { createPrivacy } from '../src/eligibility/privacy.js';
import { createMetrics } from '../src/metrics/metrics.js';
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
});

describe('the user key', () => {
  it('is the most lasting id a request has: buyeruid, then the advertising id, then user.id', async () => {
    const users = createUsers({ settings: DEFAULT_SETTINGS, redis: null, secret: 's'.repeat(24), privacy: createPrivacy(), metrics: createMetrics({ exchanges: [], campaigns: [], defaults: false }), clock: () => 0, now: () => 0 });
    const key = (r: object) => users.key(r as never);
    const ifa = '6d92078a-8246-4ba4-ae5b-76104861e7dc';
    const all = key({ user: { id: 'x-1', buyeruid: 'b-1' }, device: { ifa } });
    // Seen again without the exchange's own id, or on another exchange with another: one user.
    expect(key({ user: { buyeruid: 'b-1' }, device: { ifa } })).toBe(all);
    expect(key({ user: { id: 'y-9', buyeruid: 'b-1' } })).toBe(all);
    expect(key({ user: { id: 'x-1' }, device: { ifa } })).toBe(key({ device: { ifa } }));
    expect(key({ user: { id: 'x-1' } })).not.toBe('');
    expect(key({})).toBe('');
    await users.close();
  });
});
