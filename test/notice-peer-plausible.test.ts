import { describe, expect, it } from 'vitest';
import { createNoticeHandler } from '../src/notices/notices.js';
import { createSigner } from '../src/notices/sign.js';
import { noticeDeps } from './helpers/notice-deps.js';

/**
 * Review of 1a52354 item 5: a notice a peer hands over (a worker's BroadcastChannel, another
 * process's message on the fleet's Redis channel, which anyone who can publish there can send)
 * reached the shader with its min-to-win unchecked: a win's above the bid, a loss's 1e9 times it.
 * Checked now against the bid as made, as a notice's own is.
 */
describe('a peer-heard notice teaches the shader only a plausible min-to-win', () => {
  it('drops a win\'s min-to-win above the bid and a loss\'s over 20 x the bid; keeps the plausible ones', () => {
    const seen: Array<[number, boolean, number | undefined]> = [];
    const secret = 'peer-plausible-secret-0123456789';
    const deps = noticeDeps(() => 1_000, { signer: createSigner(secret), secret, shader: { shade: (_s: string, v: number) => v, observe: (_s: string, bid: number, won: boolean, mtw?: number) => void seen.push([bid, won, mtw]) } });
    const h = createNoticeHandler(deps);
    deps.issued.add('b1', { pctr: 0.01, userKey: '', categories: [], segment: 'default|banner|site|x', bidCpmUsd: 2 });
    h.fromPeer('b1', true, 5);
    h.fromPeer('b1', false, 1e9);
    h.fromPeer('b1', false, -5);
    h.fromPeer('b1', true, 1.5);
    h.fromPeer('b1', false, 30);
    expect(seen).toEqual([
      [2, true, undefined],
      [2, false, undefined],
      [2, false, undefined],
      [2, true, 1.5],
      [2, false, 30],
    ]);
  });
});
