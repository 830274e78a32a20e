#!/usr/bin/env node
// Writes a policy directory whose every campaign is split into N line items on one audience, as a
// seat runs them: copies with their own ids and creative ids (the simulated market then treats
// each copy's creatives as other ads), everything else equal. Used to measure the pacer where the
// bidder's own campaigns take each other's imps (docs/pacing-history.md, "Line items on one
// audience"); pair it with `simulate --budget-share` divided by N so that the seat's total budget
// stays the same.
//   node scripts/line-items.mjs policies 3 /tmp/li3
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';

const [from, n, out] = [process.argv[2], Number(process.argv[3]), process.argv[4]];
if (!from || !(Number.isInteger(n) && n >= 1) || !out) {
  process.stderr.write('usage: node scripts/line-items.mjs POLICY_DIR N OUT_DIR\n');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
for (const f of readdirSync(from)) if (f !== 'campaigns.yaml' && f.endsWith('.yaml')) copyFileSync(join(from, f), join(out, f));
const doc = parse(readFileSync(join(from, 'campaigns.yaml'), 'utf8'));
doc.campaigns = doc.campaigns.flatMap((c) =>
  Array.from({ length: n }, (_, k) => {
    const copy = structuredClone(c);
    const suffix = k === 0 ? '' : `-li${k + 1}`;
    copy.id += suffix;
    for (const cr of copy.creatives) cr.id += suffix;
    return copy;
  }),
);
writeFileSync(join(out, 'campaigns.yaml'), stringify(doc));
process.stdout.write(`${doc.campaigns.length} campaigns in ${out}\n`);
