import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startBidder } from './helpers/bidder.js';

/**
 * The real bidder tells its pacer which model serves, at start and at each swap: a creative's click
 * calibration learnt against lr-v5's pCTR (which over-predicts, clicks / expected 0.785 on an unseen
 * log) corrected a recalibrated model's right pCTR a second time, bids 0.757 x their value (review
 * "learn"). The learned state it writes names the model its click counts were expected by.
 */
describe('the CTR calibration follows the model the bidder serves', () => {
  it('names the start model, then the one an admin reload swapped in', async () => {
    const token = 'calibration-swap-token-01';
    const t = await startBidder({ adminToken: token });
    const start = JSON.parse(await (await fetch(t.bidder.opsUrl + '/admin/status', { headers: { authorization: `Bearer ${token}` } })).text()).model as string;
    const other = start === 'lr-v4' ? 'lr-v5' : 'lr-v4';
    const r = await t.post('/admin/reload/model', JSON.stringify({ version: other }), { authorization: `Bearer ${token}` });
    expect(r.status, await r.text()).toBe(200);
    await t.bidder.close();
    const learned = readFileSync(join(t.dir, 'ledger', 'learned.json'), 'utf8');
    rmSync(t.dir, { recursive: true, force: true });
    expect(learned).toContain(`"ctrModel":"${other}"`);
  });
});
