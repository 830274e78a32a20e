import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A Prebid.js bundle from the npm package's prebuilt chunks (`dist/chunks`): what the package's own
 * `gulp bundle` task does ("just concatenating pre-built files with no build step"), without its 86
 * build dependencies: prebid-core, the chunks it and each module depend on (`dependencies.json`),
 * the modules, inside the package's bundle template, then `pbjs.processQueue()`.
 */
export function prebidBundle(pkgDir: string, modules: readonly string[]): string {
  const chunks = join(pkgDir, 'dist/chunks');
  const deps = JSON.parse(readFileSync(join(chunks, 'dependencies.json'), 'utf8')) as Record<string, string[]>;
  const files = ['prebid-core.js', ...modules.map((m) => `${m}.js`)];
  const ordered = [files[0], ...new Set(files.flatMap((f) => deps[f] ?? [])), ...files.slice(1)];
  const body = [...new Set(ordered)].map((f) => readFileSync(join(chunks, f), 'utf8')).join('\n');
  const version = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;
  return (
    `/* Prebid.js v${version}, modules: ${modules.join(', ')} (test bundle) */\n` +
    `if (!window.pbjs || !window.pbjs.libLoaded) {\n(function(){\n${body}\n})();\npbjs.processQueue();\n}\n`
  );
}
