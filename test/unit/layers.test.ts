/**
 * The layers of src/ (DESIGN.md, "Layers and the way a request travels"): imports run down the
 * stack, never up, and no modules import each other, directly or round a cycle. The sources are
 * read as text, so a new import that breaks a rule fails here naming the file, the import and the
 * rule, before anyone has to find it in review.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

interface Layer {
  name: string;
  /** Paths under src/; one ending in '/' is a folder. A file belongs to its longest matching path. */
  paths: string[];
  why: string;
  /** Lower layers this one may import ('below': all of them). Its own layer is always allowed. */
  mayImport: string[] | 'below';
}

/** Bottom first. A layer may name only layers before it in mayImport (checked below). */
const LAYERS: Layer[] = [
  { name: 'errors', paths: ['errors.ts'], why: 'coded errors any layer may throw; it knows no layer', mayImport: [] },
  { name: 'native', paths: ['native/'], why: 'loads the one .node file; its callers type it, it knows none of them', mayImport: [] },
  { name: 'vendor', paths: ['vendor/'], why: 'loads the bundled, patched ssh2; it imports nothing of the project', mayImport: [] },
  { name: 'fs', paths: ['fs/'], why: 'the FileSystem seam: what may be asked of files, not how or by whom', mayImport: ['errors'] },
  {
    name: 'neutral',
    // Data and parsing that config/ and the protocol layers share, named file by file: config/ may
    // read the request table and parse keys without importing sftp/ or ssh/. The hooks' settings
    // (hooks/config.ts, zod only) stay beside the code that reads them, as sftp/requests.ts does;
    // config/ checks them with every other setting without reaching up into the ops layer.
    paths: ['parse/', 'sftp/requests.ts', 'hooks/config.ts', 'folders/rules.ts'],
    why: 'parsing (keys, CIDRs, password hashes, algorithm names), the request table, the hooks\' settings and the per-folder rules, shared by config/ and the layers that use them',
    mayImport: ['errors', 'vendor'],
  },
  { name: 'jail', paths: ['jail/'], why: "implements fs/ on a user's root: where a path really is; no protocol", mayImport: ['errors', 'native', 'fs'] },
  {
    name: 'folders',
    paths: ['folders/'],
    why: 'per-folder rules as a FileSystem decorator: checks resolved paths, then acts through a jail that refuses symlinks',
    mayImport: ['errors', 'fs', 'neutral'],
  },
  { name: 'quota', paths: ['quota/'], why: "decorates fs/ to count a root's usage and refuse growth past a quota; no protocol, no disk", mayImport: ['errors', 'fs'] },
  { name: 'net', paths: ['net/'], why: 'socket and service-manager calls; it knows sockets, not SSH', mayImport: ['errors', 'native'] },
  { name: 'audit', paths: ['audit/'], why: 'observes ssh/ and sftp/ through a typed event union; it never calls them', mayImport: ['errors', 'fs'] },
  { name: 'config', paths: ['config/'], why: 'parse, validate, freeze, pass down: it names no layer that reads it', mayImport: ['errors', 'neutral', 'audit'] },
  { name: 'sftp', paths: ['sftp/'], why: 'SFTP packets to fs/ calls; it knows neither the disk (jail/) nor the transport (ssh/)', mayImport: ['errors', 'fs', 'neutral', 'audit', 'config'] },
  { name: 'ssh', paths: ['ssh/'], why: 'who is this, and may they? hands only the sftp subsystem to sftp/', mayImport: ['errors', 'vendor', 'fs', 'neutral', 'net', 'audit', 'config', 'sftp'] },
  {
    name: 'shared',
    paths: ['shared/'],
    why: 'state several instances keep in Redis/Valkey (session leases, bandwidth shares, quota usage); it implements interfaces of ssh/, quota/ and server/ and is wired in from the top',
    mayImport: ['errors', 'audit', 'config', 'quota'],
  },
  {
    name: 'ops',
    paths: ['admin/', 'hooks/'],
    why: 'what operators plug in (metrics, admin HTTP, pid file, systemd, hooks), fed by audit records; wired in from the top',
    mayImport: ['errors', 'net', 'neutral', 'audit', 'config'],
  },
  {
    name: 'top',
    paths: ['server.ts', 'server/', 'cluster.ts', 'cli.ts', 'cli/', 'testing.ts', 'testing/', 'index.ts'],
    why: 'wiring, the daemon, workers, the test double and the public API: they use everything below, nothing uses them',
    mayImport: 'below',
  },
];

/**
 * Imports that break a rule today and are being fixed in issue 15. Keep this list short and
 * explicit; an entry whose import is gone fails the test, so the list only shrinks.
 */
const EXCEPTIONS: { from: string; to: string; why: string }[] = [];

interface Import {
  from: string; // path under src/, posix
  to: string;
  spec: string; // as written
  typeOnly: boolean;
}

// `import … from '…'`, `export … from '…'`, `import '…'` at the start of a line (so not in comments),
// possibly over several lines; dynamic import('…'); createRequire(…)('…').
const STATIC = /^[ \t]*(import|export)\s+(type\s+)?(?:[^;'"`()=]*?\s+from\s+)?['"]([^'"\n]+)['"]/gm;
const DYNAMIC = /\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/g;
const REQUIRE = /\bcreateRequire\([^)]*\)\(\s*['"]([^'"\n]+)['"]\s*\)/g;

function sourceFiles(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') ? [relative(SRC, full).split('\\').join('/')] : [];
  });
}

/** The file under src/ a relative specifier names ('./x.js' is ./x.ts), or undefined. */
function resolveSpec(from: string, spec: string, exists: (f: string) => boolean): string | undefined {
  if (!spec.startsWith('./') && !spec.startsWith('../')) return undefined; // a package or '#alias'
  const base = posix.normalize(posix.join(posix.dirname(from), spec));
  const candidates = [base.replace(/\.(m|c)?js$/, '.$1ts'), base, `${base}.ts`, `${base}/index.ts`];
  return candidates.find((c) => !c.startsWith('..') && exists(c));
}

function importsOf(from: string, text: string, exists: (f: string) => boolean): Import[] {
  const found: { spec: string; typeOnly: boolean }[] = [];
  for (const m of text.matchAll(STATIC)) found.push({ spec: m[3]!, typeOnly: m[2] !== undefined });
  for (const m of text.matchAll(DYNAMIC)) found.push({ spec: m[1]!, typeOnly: false });
  for (const m of text.matchAll(REQUIRE)) found.push({ spec: m[1]!, typeOnly: false });
  return found.flatMap(({ spec, typeOnly }) => {
    const to = resolveSpec(from, spec, exists);
    return to === undefined ? [] : [{ from, to, spec, typeOnly }];
  });
}

function layerOf(file: string, layers: Layer[]): Layer | undefined {
  let best: Layer | undefined;
  let bestLength = -1;
  for (const layer of layers) {
    for (const p of layer.paths) {
      const matches = p.endsWith('/') ? file.startsWith(p) : file === p;
      if (matches && p.length > bestLength) [best, bestLength] = [layer, p.length];
    }
  }
  return best;
}

function describeImport(i: Import): string {
  return `src/${i.from} imports src/${i.to} (${i.typeOnly ? 'import type ' : ''}'${i.spec}')`;
}

/** One message per import that runs up the stack or sideways to a layer not allowed. */
function layerViolations(imports: Import[], layers: Layer[]): string[] {
  const rank = new Map(layers.map((l, i) => [l.name, i]));
  const out: string[] = [];
  for (const i of imports) {
    const a = layerOf(i.from, layers)!;
    const b = layerOf(i.to, layers)!;
    const allowed = a === b || (a.mayImport === 'below' ? rank.get(b.name)! < rank.get(a.name)! : a.mayImport.includes(b.name));
    if (allowed) continue;
    const where = rank.get(b.name)! > rank.get(a.name)! ? `is above ${a.name}/` : `is not among what ${a.name}/ may import`;
    const may = a.mayImport === 'below' ? 'the layers below it' : a.mayImport.join(', ') || 'nothing';
    out.push(`${describeImport(i)}: layer ${b.name} (${b.why}) ${where}. ${a.name} (${a.why}) may import only ${may}.`);
  }
  return out;
}

/** Every cycle's files, as "a → b → a", one per strongly connected group (Tarjan). */
function cycles(imports: Import[]): string[] {
  const next = new Map<string, string[]>();
  for (const i of imports) next.set(i.from, [...(next.get(i.from) ?? []), i.to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const out: string[] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) visit(w);
      if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, low.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const group = stack.splice(stack.indexOf(v));
    if (group.length > 1 || next.get(v)?.includes(v)) out.push(cyclePath(v, new Set(group), next));
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return out;
}

/** A shortest way from `start` back to itself inside its group (breadth first), for the message. */
function cyclePath(start: string, group: Set<string>, next: Map<string, string[]>): string {
  const cameFrom = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0 && !cameFrom.has(start)) {
    const v = queue.shift()!;
    for (const w of next.get(v) ?? []) {
      if (!group.has(w) || cameFrom.has(w)) continue;
      cameFrom.set(w, v);
      queue.push(w);
    }
  }
  const path = [start];
  for (let v = cameFrom.get(start)!; v !== start; v = cameFrom.get(v)!) path.unshift(v);
  return [start, ...path].map((f) => `src/${f}`).join(' → ');
}

function sourceImports(): Import[] {
  const files = new Set(sourceFiles());
  return [...files].flatMap((f) => importsOf(f, readFileSync(join(SRC, f), 'utf8'), (c) => files.has(c)));
}

const key = (i: { from: string; to: string }) => `${i.from} → ${i.to}`;

describe('the layer table', () => {
  it('names, for each layer, only layers below it', () => {
    const seen = new Set<string>();
    for (const l of LAYERS) {
      if (l.mayImport !== 'below') for (const n of l.mayImport) expect(seen.has(n), `${l.name} may import ${n}, which is not below it`).toBe(true);
      seen.add(l.name);
    }
  });

  it('places every file under src/ in a layer', () => {
    const unplaced = sourceFiles().filter((f) => layerOf(f, LAYERS) === undefined);
    expect(unplaced.map((f) => `src/${f} is in no layer: add its folder or name to LAYERS in test/unit/layers.test.ts`)).toEqual([]);
  });
});

describe('imports under src/', () => {
  const imports = sourceImports();

  it('never run up the stack (except the listed ones being fixed)', () => {
    const excepted = new Set(EXCEPTIONS.map(key));
    expect(layerViolations(imports.filter((i) => !excepted.has(key(i))), LAYERS)).toEqual([]);
  });

  it('still include every listed exception, so a fixed one leaves the list', () => {
    const stale = EXCEPTIONS.filter((e) => layerViolations(imports.filter((i) => key(i) === key(e)), LAYERS).length === 0);
    expect(stale.map((e) => `${key(e)} is fixed: remove it from EXCEPTIONS`)).toEqual([]);
  });

  it('form no cycle', () => {
    expect(cycles(imports)).toEqual([]);
  });
});

describe('the checker itself', () => {
  const files = new Set(['errors.ts', 'fs/file-system.ts', 'jail/jail.ts', 'sftp/session.ts', 'sftp/a.ts', 'sftp/b.ts', 'config/load.ts', 'ssh/connection.ts']);
  const exists = (f: string) => files.has(f);
  const read = (from: string, text: string) => importsOf(from, text, exists);

  it('finds static, multi-line, re-export, type-only, dynamic and createRequire imports, relative ones only', () => {
    const text = [
      "import { a } from './a.js';",
      'import {',
      '  b,',
      "} from './b.js';",
      "export type { C } from '../fs/file-system.js';",
      "const j = await import('../jail/jail.js');",
      "const r = createRequire(import.meta.url)('../errors.js');",
      "import { z } from 'zod';",
      " * import { nope } from '../ssh/connection.js'  (a comment line)",
    ].join('\n');
    expect(read('sftp/session.ts', text).map((i) => `${i.to}${i.typeOnly ? ' (type)' : ''}`)).toEqual([
      'sftp/a.ts',
      'sftp/b.ts',
      'fs/file-system.ts (type)',
      'jail/jail.ts',
      'errors.ts',
    ]);
  });

  it('names the file, the import and the rule when an import runs up the stack', () => {
    const up = read('config/load.ts', "import { x } from '../ssh/connection.js';");
    expect(layerViolations(up, LAYERS)).toEqual([
      `src/config/load.ts imports src/ssh/connection.ts ('../ssh/connection.js'): layer ssh (${LAYERS.find((l) => l.name === 'ssh')!.why}) is above config/. ` +
        `config (${LAYERS.find((l) => l.name === 'config')!.why}) may import only errors, neutral, audit.`,
    ]);
  });

  it('refuses sftp/ reaching down past fs/ into jail/', () => {
    expect(layerViolations(read('sftp/session.ts', "import { Jail } from '../jail/jail.js';"), LAYERS)[0]).toContain('is not among what sftp/ may import');
  });

  it('reports a cycle with the files round it', () => {
    const imports = [...read('sftp/a.ts', "import './b.js';"), ...read('sftp/b.ts', "import type { S } from './session.js';"), ...read('sftp/session.ts', "import './a.js';")];
    expect(cycles(imports)).toEqual(['src/sftp/a.ts → src/sftp/b.ts → src/sftp/session.ts → src/sftp/a.ts']);
  });
});
