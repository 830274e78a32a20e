/**
 * The longest request category read. IAB category codes are short ('IAB17-12', Content Taxonomy
 * 2.x/3.x ids of a few characters): a longer one names nothing a campaign targets, and each is kept
 * with every bid made on the page (a 240,000-character one took the bidder to heap OOM). Its own
 * module on the ground floor (docs/ARCHITECTURE.md): the policy schema bounds campaigns' categories
 * by it and eligibility reads requests' with it. Defined in eligibility.ts it made an import cycle
 * (eligibility imports the policy module) that broke a caller loading eligibility first
 * (bench/eligibility.mjs: MAX_CATEGORY_LENGTH read before initialisation); in eligibility/limits.ts
 * it was an import from the ground up to the stages.
 */
export const MAX_CATEGORY_LENGTH = 64;
