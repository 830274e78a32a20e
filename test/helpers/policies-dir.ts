import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A copy of `policies/` in `dir` whose ledger journal (`dir/ledger`) and event log (`dir/events`)
 * are the test's own, `extra` appended to bidder.yaml (top-level settings). Returns the copy's path.
 */
export function policiesIn(dir: string, extra = ''): string {
  const policies = join(dir, 'policies');
  cpSync('policies', policies, { recursive: true });
  const yaml = join(policies, 'bidder.yaml');
  writeFileSync(
    yaml,
    readFileSync(yaml, 'utf8')
      .replace(/^(\s*)journalPath: .*$/m, `$1journalPath: ${join(dir, 'ledger')}`)
      .replace(/^(\s*)dir: var\/events$/m, `$1dir: ${join(dir, 'events')}`) + extra,
  );
  return policies;
}
