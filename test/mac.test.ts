import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createMac } from '../src/crypto/mac.js';

describe('createMac is HMAC-SHA256', () => {
  for (const key of ['k', 'a-notice-secret-of-some-length', 'x'.repeat(64), 'y'.repeat(100), 'ключ']) {
    it(`matches node's createHmac for a ${Buffer.byteLength(key)}-byte key`, () => {
      const mac = createMac(Buffer.from(key));
      // Short and long messages (the kept buffer and the other path), one after another (the kept buffer reused).
      for (const msg of ['', 'bid-1\ncampaign\ncreative\n1.25\nUSD\ndefault\n1790000000000', 'ü'.repeat(300), 'x'.repeat(1024), 'x'.repeat(1025), '€'.repeat(1024), 'ab', '😀'.repeat(600)]) {
        expect(mac(msg).toString('hex')).toBe(createHmac('sha256', key).update(msg).digest('hex'));
      }
    });
  }
});
