import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The IAB VAST schema each version is checked against (test/fixtures/vast, see its SOURCES.md). */
export const VAST_SCHEMA: Record<string, string> = {
  '2.0': 'test/fixtures/vast/vast_2.0.1.xsd',
  '3.0': 'test/fixtures/vast/vast3_draft.xsd',
  '4.0': 'test/fixtures/vast/vast4.xsd',
  // No 4.1 schema among the copied files (see SOURCES.md); 4.2, its successor in the same namespace, is the closest.
  '4.1': 'test/fixtures/vast/vast_4.2.xsd',
  '4.2': 'test/fixtures/vast/vast_4.2.xsd',
};

/**
 * A VAST 4 document with its default namespace declared: the bidder leaves it out on secure imps
 * (src/respond/vast.ts), and the 4.x schemas define their elements in it. Others as they are.
 */
export function withVastNamespace(xml: string): string {
  return xml.replace(/^<VAST version="(4\.\d)">/, '<VAST version="$1" xmlns="http://www.iab.com/VAST">');
}

/** Whether `xmllint` (Debian libxml2-utils) runs here. */
export function hasXmllint(): boolean {
  return spawnSync('xmllint', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * Why the VAST schema tests cannot run, or '' when they can. In CI (CI=true, where .ci/run
 * installs libxml2-utils) a missing xmllint is a failure, never a skip.
 */
export function xmllintMissing(): string {
  if (hasXmllint()) return '';
  if (process.env.CI === 'true') throw new Error('xmllint is not installed: CI must install libxml2-utils (.ci/run)');
  const msg = 'SKIPPED: xmllint is not installed (apt-get install libxml2-utils); the VAST schema checks did not run';
  console.warn(msg);
  return msg;
}

/**
 * Validate each document against its XSD with `xmllint --schema`, one xmllint run per schema.
 * Returns, per document, '' when valid or xmllint's complaint.
 */
export function validateXml(docs: ReadonlyArray<{ xml: string; xsd: string }>): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'vast-'));
  try {
    const bySchema = new Map<string, number[]>();
    docs.forEach((d, i) => {
      writeFileSync(join(dir, `${i}.xml`), d.xml);
      const list = bySchema.get(d.xsd) ?? [];
      list.push(i);
      bySchema.set(d.xsd, list);
    });
    const out = docs.map(() => 'not checked');
    for (const [xsd, idx] of bySchema) {
      const files = idx.map((i) => join(dir, `${i}.xml`));
      const r = spawnSync('xmllint', ['--noout', '--schema', xsd, ...files], { encoding: 'utf8', maxBuffer: 64 << 20 });
      const text = `${r.stdout}\n${r.stderr}`;
      for (const i of idx) {
        const f = join(dir, `${i}.xml`);
        if (text.includes(`${f} validates`)) out[i] = '';
        else out[i] = text.split('\n').filter((l) => l.startsWith(f)).join('\n') || `xmllint said nothing about ${f}`;
      }
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
