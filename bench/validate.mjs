#!/usr/bin/env node
// npm run bench:validate [-- dist [base dist]]
// Request validation's cost (src/validate/validate.ts), on requests parsed beforehand: the bench's
// 2,000 requests (bench/workload.mjs) and the real ones of test/fixtures/corpus (Prebid Server's
// and the IAB's, see its SOURCES.md), each set in turn, interleaved with a base build's where one
// is named (a `git worktree` of the base, built: e.g. /tmp/bidder-bench-base-SHA/dist, which
// `npm run bench -- --base REF` leaves). Prints figures; asserts nothing.
// Every build meets the same requests in the same order before each timed set, so their code has
// the same history (ajv's property reads go megamorphic once a build has seen many request shapes:
// one that had sorted the corpus beforehand read the bench's uniform requests ~2x slower than an
// identical copy that had not). The bench's requests are timed first, on validators that have seen
// nothing else; then every build validates the whole corpus once (the first build's answers sort it
// into accepted and refused) before the corpus's sets. Within the rounds the builds' order alternates.
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
// Requests a build refuses go a slower way (the explanation, the thrown error), timed apart. Every
// build validates the whole corpus here, so none has seen shapes the others have not; the sets are
// sorted by the first build's answers.
function sortCorpus() {
  const verdicts = validators.map((v) =>
    corpus.map((b) => {
      try {
        v.validate(JSON.parse(b));
        return true;
      } catch {
        return false;
      }
    }),
  );
  verdicts.slice(1).forEach((vs, i) => {
    const differ = vs.filter((ok, j) => ok !== verdicts[0][j]).length;
    if (differ) console.log(`\n${validators[i + 1].dist} answers ${differ} corpus requests otherwise than ${validators[0].dist}; sets follow ${validators[0].dist}`);
  });
  return [
    { name: 'corpus requests, accepted', bodies: corpus.filter((_, j) => verdicts[0][j]) },
    { name: 'corpus requests, refused', bodies: corpus.filter((_, j) => !verdicts[0][j]) },
  ];
}
// Sets made lazily: the corpus's only once the bench's requests are timed.
const sets = [
  () => [{ name: "bench's requests", bodies: requests(2000).map((r) => JSON.stringify(r)) }],
  sortCorpus,
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

/** Round `round`'s order of the builds: forwards on even rounds, backwards on odd ones. */
const order = (round) => (round % 2 ? [...validators.keys()].reverse() : [...validators.keys()]);

for (const make of sets) for (const set of make()) {
  const passes = Math.max(1, Math.round(100_000 / set.bodies.length));
  for (const i of order(0)) time(validators[i].validate, set.bodies, passes); // warm-up
  const runs = validators.map(() => []);
  let refused = 0;
  for (let round = 0; round < 7; round++) {
    for (const i of order(round)) {
      const r = time(validators[i].validate, set.bodies, passes);
      runs[i].push(r.us);
      refused = r.refused;
    }
  }
  console.log(`\n${set.name}: ${set.bodies.length} (${refused} refused), ${passes} passes a round, 7 rounds interleaved${validators.length > 1 ? ', the order alternating' : ''}`);
  console.log('| build | µs per request, median | min | max |\n| --- | ---: | ---: | ---: |');
  validators.forEach((v, i) => {
    const s = runs[i].sort((a, b) => a - b);
    console.log(`| ${v.dist} | ${s[3].toFixed(3)} | ${s[0].toFixed(3)} | ${s[6].toFixed(3)} |`);
  });
}
