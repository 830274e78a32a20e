import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/*
 * docs/ARCHITECTURE.md's floors, read from the document itself, held against every import of
 * src/**.ts: a folder added on no floor (src/fleet/ was), an import up a floor that the list under
 * the diagram does not name, or a listed one no import uses, fails here instead of drifting.
 */

const doc = readFileSync('docs/ARCHITECTURE.md', 'utf8');
const SRC = 'src';

/** The rooms of `src/`: `name/` for a folder, `name.ts` for a top-level file. */
function roomOf(file: string): string {
  const i = file.indexOf('/');
  return i < 0 ? file : file.slice(0, i + 1);
}

/** Floor name → its rooms, top floor first, as the diagram (the first code block) draws them. */
function floorsOfDoc(): Map<string, Set<string>> {
  const block = /```\n([\s\S]*?)```/.exec(doc)![1];
  const floors = new Map<string, Set<string>>();
  let current: Set<string> | undefined;
  for (const line of block.split('\n')) {
    if (line.trim() === '') continue;
    const named = /^(\S+)\s+(.*)$/.exec(line);
    let rest = line;
    if (named) {
      current = new Set();
      floors.set(named[1], current);
      rest = named[2];
    }
    // What a room holds is said in parentheses after it: not rooms.
    for (const token of rest.replace(/\([^)]*\)/g, ' ').split(/\s+/)) {
      if (token === '') continue;
      expect(token, `diagram token ${token}`).toMatch(/^[a-z][\w-]*(\/[\w./-]*)?$|^[a-z][\w-]*\.ts$/);
      current!.add(roomOf(token));
    }
  }
  return floors;
}

interface Exception {
  from: string;
  to: string;
  typeOnly: boolean;
}

/** The imports up a floor listed under the diagram: "- `a/b.ts` imports … `c/d.ts`". */
function exceptionsOfDoc(): Exception[] {
  const head = doc.slice(0, doc.indexOf('\n## '));
  const out: Exception[] = [];
  for (const m of head.matchAll(/^- `([\w/.-]+\.ts)` imports (.*?)`([\w/.-]+\.ts)`(.*)$/gm)) {
    out.push({ from: m[1], to: m[3], typeOnly: (m[2] + m[4]).includes('`import type`') });
  }
  return out;
}

interface Import {
  from: string;
  /** A file of src/ (relative, .ts), or a package's name. */
  to: string;
  local: boolean;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Every import of a file: static, `export … from`, and `import('…')` with a literal. */
function importsOf(path: string): Import[] {
  const from = relative(SRC, path).split(sep).join('/');
  const sf = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: Import[] = [];
  const add = (spec: string, typeOnly: boolean) => {
    if (!spec.startsWith('.')) {
      out.push({ from, to: spec, local: false, typeOnly });
      return;
    }
    let to = posix.normalize(posix.join(posix.dirname(from), spec));
    if (to.endsWith('.js')) to = to.slice(0, -3) + '.ts';
    out.push({ from, to, local: true, typeOnly });
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const c = node.importClause;
      const named = c?.namedBindings && ts.isNamedImports(c.namedBindings) ? c.namedBindings.elements : undefined;
      const typeOnly = !!c && (c.isTypeOnly || (!c.name && !!named && named.length > 0 && named.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier.text, typeOnly);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      add(node.moduleSpecifier.text, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments.length > 0 && ts.isStringLiteralLike(node.arguments[0])) {
      add(node.arguments[0].text, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

const floors = floorsOfDoc();
const floorNames = [...floors.keys()];
const rankOf = new Map<string, number>();
for (const [name, rooms] of floors) for (const r of rooms) rankOf.set(r, floorNames.indexOf(name));
const TOOLS = floorNames.indexOf('tools');
const ENTRY = floorNames.indexOf('entry');
const exceptions = exceptionsOfDoc();
const imports = sourceFiles(SRC).flatMap(importsOf);
const local = imports.filter((i) => i.local && roomOf(i.from) !== roomOf(i.to));

describe('docs/ARCHITECTURE.md floors hold for every import of src/', () => {
  it('reads the diagram and the exceptions', () => {
    expect(floorNames).toEqual(['entry', 'edge', 'path', 'state', 'stages', 'ground', 'tools']);
    expect(exceptions.length).toBeGreaterThan(0);
    for (const e of exceptions) for (const f of [e.from, e.to]) expect(existsSync(join(SRC, f)), `${f} (an exception) exists`).toBe(true);
  });

  it('puts every folder and top-level file of src/ on a floor', () => {
    const rooms = new Set(sourceFiles(SRC).map((p) => roomOf(relative(SRC, p).split(sep).join('/'))));
    expect([...rooms].filter((r) => !rankOf.has(r)).sort()).toEqual([]);
    // And draws no room that is gone.
    expect([...rankOf.keys()].filter((r) => !rooms.has(r)).sort()).toEqual([]);
  });

  it('imports from its own floor and below, from above only as listed', () => {
    const wrong: string[] = [];
    for (const i of local) {
      const a = rankOf.get(roomOf(i.from));
      const b = rankOf.get(roomOf(i.to));
      if (a === undefined || b === undefined) continue; // the test above names it
      const listed = exceptions.some((e) => e.from === i.from && e.to === i.to);
      let why = '';
      if (a === TOOLS) {
        if (b === ENTRY) why = 'a tool imports the entry floor';
      } else if (b === TOOLS) {
        if (roomOf(i.from) !== 'cli/') why = 'the daemon imports a tool (only cli/ calls them)';
      } else if (b < a && !listed) why = `up from ${floorNames[a]} to ${floorNames[b]}, not listed under the diagram`;
      if (why) wrong.push(`${i.from} -> ${i.to}: ${why}`);
    }
    expect(wrong).toEqual([]);
  });

  it('uses every listed exception, each as the list says', () => {
    for (const e of exceptions) {
      const found = local.filter((i) => i.from === e.from && i.to === e.to);
      expect(found.length, `${e.from} imports ${e.to}`).toBeGreaterThan(0);
      const a = rankOf.get(roomOf(e.from))!;
      const b = rankOf.get(roomOf(e.to))!;
      expect(b < a, `${e.from} -> ${e.to} goes up a floor`).toBe(true);
      if (e.typeOnly) expect(found.every((i) => i.typeOnly), `${e.from} imports ${e.to} as a type alone`).toBe(true);
      else {
        // A module imported from below imports code only from the ground itself: no cycle through
        // it (a type, erased from the JavaScript, may come from beside it).
        const ground = floorNames.indexOf('ground');
        const its = imports.filter((i) => i.from === e.to && i.local && !i.typeOnly).filter((i) => rankOf.get(roomOf(i.to)) !== ground);
        expect(its.map((i) => i.to), `${e.to} imports only from the ground`).toEqual([]);
      }
    }
  });

  it('keeps the rules written beside the floors', () => {
    const pipelineFrom = local.filter((i) => roomOf(i.to) === 'pipeline/').map((i) => roomOf(i.from));
    expect([...new Set(pipelineFrom)].sort()).toEqual(['bidder.ts', 'server/']);
    expect(local.filter((i) => roomOf(i.from) === 'model/' && ['sim/', 'live/', 'harness/'].includes(roomOf(i.to)))).toEqual([]);
    const uws = imports.filter((i) => i.to === 'uWebSockets.js').map((i) => roomOf(i.from));
    expect([...new Set(uws)]).toEqual(['server/']);
  });
});
