/**
 * The longest request category read. IAB category codes are short ('IAB17-12', Content Taxonomy
 * 2.x/3.x ids of a few characters): a longer one names nothing a campaign targets, and each is kept
 * with every bid made on the page (a 240,000-character one took the bidder to heap OOM). Its own
 * module: the policy schema bounds campaigns' categories by it, and eligibility imports the policy
 * module, so defining it in eligibility.ts made an import cycle that broke a caller loading
 * eligibility first (bench/eligibility.mjs: MAX_CATEGORY_LENGTH read before initialisation).
 */
export const MAX_CATEGORY_LENGTH = 64;
