import { spawnSync } from 'node:child_process';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../../src/harness/redis.js';

/**
 * Vitest global setup: dist/ built from the sources, and the services the integration suites need,
 * started privately where their binary is on the PATH, so a local `npm test` runs the same suites
 * as CI.
 * - Redis: REDIS_URL when set; else a private redis-server on a free port (memory only) for the
 *   whole run, handed to the suites through REDIS_URL; else none (the Redis suites skip, or fail
 *   with CI=true).
 * - prometheus, promtool, xmllint, chromium, openssl: each suite starts its own; here they are
 *   only looked for, so the run can say what it skipped, at its start and again at its end.
 */
const TOOLS: Array<{ bin: string[]; suites: string; install: string }> = [
  { bin: ['redis-server'], suites: 'Redis suites (ledger.redis, fleet*, freqcap Redis, profiles.redis, redis-failure)', install: 'apt-get install redis-server' },
  { bin: ['prometheus'], suites: 'test/dashboard.test.ts', install: 'apt-get install prometheus' },
  { bin: ['promtool'], suites: 'test/alerts.test.ts', install: 'apt-get install prometheus' },
  { bin: ['xmllint'], suites: 'VAST schema checks (vast, conformance)', install: 'apt-get install libxml2-utils' },
  { bin: ['chromium', 'chromium-browser'], suites: 'test/prebid.e2e.test.ts', install: 'apt-get install chromium' },
  { bin: ['openssl'], suites: 'test/prebid.e2e.test.ts', install: 'apt-get install openssl' },
];

const onPath = (bin: string) => spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0 || spawnSync(bin, ['version'], { stdio: 'ignore' }).status === 0;

export default async function setup(): Promise<() => Promise<void>> {
  // dist/ built once, before any suite: the suites that spawn `dist/cli.js` run beside others, and a
  // suite that rebuilt dist while another's bidder was loading it gave that bidder a half-written
  // module (CI: "does not provide an export named 'DEFAULT_SETTINGS'", a serve that exited 1).
  const built = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  if (built.status !== 0) throw new Error('[services] tsc -p tsconfig.json failed: dist/ was not built, and the suites that spawn the bidder need it');
  // A Redis named by REDIS_URL stands in for the binary.
  const missing = TOOLS.filter((t) => !t.bin.some(onPath) && !(t.bin[0] === 'redis-server' && process.env.REDIS_URL));
  let redis: PrivateRedis | null = null;
  if (process.env.REDIS_URL) {
    console.log(`[services] Redis: REDIS_URL=${process.env.REDIS_URL}`);
  } else if (haveRedisServer()) {
    redis = await startPrivateRedis();
    process.env.REDIS_URL = redis.url;
    console.log(`[services] Redis: private redis-server at ${redis.url} for this run`);
  }
  const report = () => {
    if (missing.length === 0) return;
    const ci = process.env.CI === 'true';
    for (const t of missing) {
      console.warn(`[services] ${ci ? 'FAILED' : 'SKIPPED'}: ${t.suites}: ${t.bin.join(' / ')} is not on the PATH (${t.install})`);
    }
  };
  report();
  return async () => {
    await redis?.stop();
    report();
  };
}
