import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * The ledger's own TypeScript (and the util module it imports), transpiled into `<build>/ledger`
 * and `<build>/util` for a child process or a worker thread to import (no type check): Node 20
 * cannot run .ts files and no TS loader is installed.
 */
export function transpileLedger(build: string): void {
  for (const dir of ['ledger', 'util']) {
    const srcDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src', dir);
    fs.mkdirSync(path.join(build, dir), { recursive: true });
    for (const name of fs.readdirSync(srcDir)) {
      if (!name.endsWith('.ts')) continue;
      const out = ts.transpileModule(fs.readFileSync(path.join(srcDir, name), 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      });
      fs.writeFileSync(path.join(build, dir, name.replace(/\.ts$/, '.js')), out.outputText);
    }
  }
}
