import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The policy sets of the real-bidder pacing tests: one USD exchange that answers no-bids empty, and
 * banner campaigns on one site each, worth 5 USD CPM (every win costs 0.005 USD).
 */
export function pacedCampaign(id: string, budget: string, domain = 'news.example'): string {
  return `  - id: ${id}
    advertiser: ${id}
    adomain: [${id}.example]
    goal: { type: cpm, valueUsd: 5 }
    budget: ${budget}
    maxBidCpmUsd: 5
    targeting: { domains: [${domain}] }
    creatives:
      - { id: ${id}-cr, format: banner, w: 300, h: 250, title: t, landingUrl: "https://${id}.example/" }
`;
}

/** A fresh policy folder under `parent` holding `campaigns` (`pacedCampaign` entries). */
export function pacedPolicies(parent: string, ...campaigns: string[]): string {
  const dir = mkdtempSync(join(parent, 'policies-'));
  writeFileSync(join(dir, 'exchanges.yaml'), 'exchanges:\n  default:\n    currency: USD\n    noBid: empty\n');
  writeFileSync(join(dir, 'currency.yaml'), 'ratesPerUsd:\n  EUR: 0.92\n');
  writeFileSync(join(dir, 'campaigns.yaml'), `campaigns:\n${campaigns.join('')}`);
  return dir;
}
