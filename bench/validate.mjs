#!/usr/bin/env node
// npm run bench:validate [-- dist [base dist]]
// Request validation's cost (src/validate/validate.ts), on requests parsed beforehand: the bench's
// 2,000 requests (bench/workload.mjs) and the real ones of test/fixtures/corpus (Prebid Server's
// and the IAB's, see its SOURCES.md), each set in turn, interleaved with a base build's where one
// is named (a `git worktree` of the base, built: e.g. /tmp/bidder-bench-base-SHA/dist, which
// `npm run bench -- --base REF` leaves). Prints figures; asserts nothing.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { corpusRequests, requests } from './workload.mjs';

const builds = [process.argv[2] ?? 'dist', process.argv[3]].filter(Boolean);
const validators = [];
for (const dist of builds) {
  const { createValidator } = await import(pathToFileURL(resolve(dist, 'validate/validate.js')).href);
  validators.push({ dist, validate: createValidator({ maxTmaxMs: 1000, maxImps: 100 }) });
}

const corpus = corpusRequests('.');
// Requests a build refuses go a slower way (the explanation, the thrown error), timed apart.
const passes = (b) => {
  try {
    validators[0].validate(JSON.parse(b));
    return true;
  } catch {
    return false;
  }
};
const sets = [
  { name: "bench's requests", bodies: requests(2000).map((r) => JSON.stringify(r)) },
  { name: 'corpus requests, accepted', bodies: corpus.filter(passes) },
  { name: 'corpus requests, refused', bodies: corpus.filter((b) => !passes(b)) },
];

/** µs per validation over `rounds` passes of one set, each request parsed before the clock starts (validation rewrites what x-coerce reads). */
function time(validate, bodies, passes) {
  const objs = [];
  for (let p = 0; p < passes; p++) for (const b of bodies) objs.push(JSON.parse(b));
  let refused = 0;
  const t0 = process.hrtime.bigint();
  for (const o of objs) {
    try {
      validate(o);
    } catch {
      refused++;
    }
  }
  return { us: Number(process.hrtime.bigint() - t0) / objs.length / 1000, refused: refused / passes };
}

for (const set of sets) {
  const passes = Math.max(1, Math.round(100_000 / set.bodies.length));
  for (const v of validators) time(v.validate, set.bodies, passes); // warm-up
  const runs = validators.map(() => []);
  let refused = 0;
  for (let round = 0; round < 7; round++) {
    validators.forEach((v, i) => {
      const r = time(v.validate, set.bodies, passes);
      runs[i].push(r.us);
      refused = r.refused;
    });
  }
  console.log(`\n${set.name}: ${set.bodies.length} (${refused} refused), ${passes} passes a round, 7 rounds interleaved`);
  console.log('| build | µs per request, median | min | max |\n| --- | ---: | ---: | ---: |');
  validators.forEach((v, i) => {
    const s = runs[i].sort((a, b) => a - b);
    console.log(`| ${v.dist} | ${s[3].toFixed(3)} | ${s[0].toFixed(3)} | ${s[6].toFixed(3)} |`);
  });
}
