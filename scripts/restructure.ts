/**
 * Moves source files into areas by concern and rewrites every path that names them.
 *
 *   npx tsx scripts/restructure.ts            plan, then move and rewrite
 *   npx tsx scripts/restructure.ts --dry-run  print the plan, change nothing
 *   npx tsx scripts/restructure.ts --verify   then run tsc, depcruise's layer test and eslint
 *
 * The move map is data (MOVES in restructure-map.ts). Each old path is resolved and `git mv`ed; every relative module
 * specifier (import, export, import(), import types, vi.mock, vi.importActual, new URL) in every code
 * file is resolved against the file's old location and re-relativised to the new locations, in the
 * style it had (`.js`, extensionless, folder). Repo-root paths in any text file (package.json
 * scripts, configs, docs, comments) and `functions/`-relative paths with an extension (docs'
 * `fleet/nodes.ts`) are rewritten too. What it cannot rewrite is listed at the end.
 * It refuses to run when a source is missing, a destination exists, or a retired folder holds a
 * file the map does not place; a second run after a complete one says so and changes nothing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { DOC_SECTIONS, MOVES, RETIRED, TEXT_EDITS } from './restructure-map.js';

const CODE_EXT = /\.(ts|tsx|mts|cts|js|mjs|cjs|jsx)$/;
const TEXT_EXT =
  /\.(ts|tsx|mts|cts|js|mjs|cjs|jsx|json|md|ya?ml|sh|html|txt|toml)$|(^|\/)(Containerfile|Dockerfile)$/;
const SELF = 'scripts/restructure.ts';
const SKIP_TEXT = new Set([SELF, 'scripts/restructure-map.ts', 'package-lock.json']);

const posix = path.posix;

function git(args: string[], cwd: string): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

interface Plan {
  /** old file → new file, for every file that moves. */
  files: Map<string, string>;
  /** old folder → new folder, for folder entries of the map (used for folder specifiers). */
  folders: [string, string][];
}

function listFiles(root: string): string[] {
  return git(['ls-files', '-co', '--exclude-standard', '-z'], root)
    .split('\0')
    .filter((f) => f && existsSync(path.join(root, f)));
}

function buildPlan(all: string[]): { plan: Plan; problems: string[]; applied: boolean } {
  const files = new Map<string, string>();
  const folders: [string, string][] = [];
  const problems: string[] = [];
  const fileSet = new Set(all);
  let missing = 0;
  let present = 0;
  for (const [from, to] of MOVES) {
    if (fileSet.has(from)) {
      files.set(from, to);
      present++;
      continue;
    }
    const under = all.filter((f) => f.startsWith(`${from}/`));
    if (under.length) {
      folders.push([from, to]);
      for (const f of under) if (!files.has(f)) files.set(f, to + f.slice(from.length));
      present++;
      continue;
    }
    missing++;
    const there = fileSet.has(to) || all.some((f) => f.startsWith(`${to}/`));
    if (!there) problems.push(`source missing and destination absent: ${from} → ${to}`);
  }
  if (present === 0 && missing === MOVES.length && problems.length === 0)
    return { plan: { files, folders }, problems, applied: true };
  if (missing)
    problems.push(
      `${missing} of ${MOVES.length} sources are missing: a partial run? Restore with git first.`,
    );
  const targets = new Set<string>();
  for (const [from, to] of files) {
    if (fileSet.has(to)) problems.push(`destination exists: ${to} (for ${from})`);
    if (targets.has(to)) problems.push(`two files move to ${to}`);
    targets.add(to);
  }
  const left = all.filter((f) => RETIRED.some((d) => f.startsWith(`${d}/`)) && !files.has(f));
  for (const f of left)
    problems.push(`not in the move map, in a retired folder: ${f} (add ['${f}', '<new path>'] to MOVES)`);
  return { plan: { files, folders }, problems, applied: false };
}

const newPath = (plan: Plan, p: string) => plan.files.get(p) ?? p;

function newFolder(plan: Plan, dir: string): string | undefined {
  for (const [from, to] of plan.folders) {
    if (dir === from) return to;
    if (dir.startsWith(`${from}/`)) return to + dir.slice(from.length);
  }
  return undefined;
}

type Style =
  { kind: 'exact' } | { kind: 'swap'; from: string; to: string } | { kind: 'strip' } | { kind: 'dir' };

interface Resolved {
  target: string;
  style: Style;
}

const SWAPS: [string, string][] = [
  ['.js', '.ts'],
  ['.js', '.tsx'],
  ['.mjs', '.mts'],
  ['.cjs', '.cts'],
  ['.jsx', '.tsx'],
];
const ADD = ['.ts', '.tsx', '.mts', '.js', '.mjs', '.d.ts', '.json'];

function resolveSpecifier(
  fileSet: Set<string>,
  dirs: Set<string>,
  from: string,
  spec: string,
): Resolved | 'dir' | undefined {
  const base = posix.normalize(posix.join(posix.dirname(from), spec)).replace(/\/$/, '');
  if (base.startsWith('..')) return undefined;
  if (fileSet.has(base)) return { target: base, style: { kind: 'exact' } };
  for (const [js, src] of SWAPS)
    if (base.endsWith(js) && fileSet.has(base.slice(0, -js.length) + src))
      return { target: base.slice(0, -js.length) + src, style: { kind: 'swap', from: src, to: js } };
  for (const ext of ADD) if (fileSet.has(base + ext)) return { target: base + ext, style: { kind: 'strip' } };
  for (const idx of ['/index.ts', '/index.tsx', '/index.js'])
    if (fileSet.has(base + idx)) return { target: base + idx, style: { kind: 'dir' } };
  if (dirs.has(base)) return 'dir';
  return undefined;
}

function relative(fromFile: string, to: string): string {
  const rel = posix.relative(posix.dirname(fromFile), to);
  return rel.startsWith('.') ? rel : `./${rel}`;
}

function render(style: Style, fromFile: string, target: string): string {
  switch (style.kind) {
    case 'exact':
      return relative(fromFile, target);
    case 'swap':
      return relative(fromFile, target.slice(0, -style.from.length) + style.to);
    case 'strip':
      return relative(fromFile, target.replace(/(\.d)?\.[a-z]+$/, ''));
    case 'dir':
      return relative(fromFile, posix.dirname(target));
  }
}

interface Edit {
  start: number;
  end: number;
  text: string;
}

function applyEdits(text: string, edits: Edit[]): string {
  let out = text;
  for (const e of [...edits].sort((a, b) => b.start - a.start))
    out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return out;
}

/** Rewrites the relative specifiers of one code file; returns the new text and what it could not place. */
function rewriteCode(
  plan: Plan,
  fileSet: Set<string>,
  dirs: Set<string>,
  file: string,
  text: string,
  notes: string[],
): string {
  const kind = file.endsWith('x')
    ? ts.ScriptKind.TSX
    : /\.(m|c)?js$/.test(file)
      ? ts.ScriptKind.JS
      : ts.ScriptKind.TS;
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, kind);
  const to = newPath(plan, file);
  const moved = to !== file;
  const edits: Edit[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) {
      const spec = node.text;
      if (spec.startsWith('./') || spec.startsWith('../')) {
        const r = resolveSpecifier(fileSet, dirs, file, spec);
        const line = source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
        if (r === 'dir') {
          const dir = posix.normalize(posix.join(posix.dirname(file), spec)).replace(/\/$/, '');
          const nd = newFolder(plan, dir) ?? dir;
          const touched = [...plan.files.keys()].some((f) => f.startsWith(`${dir}/`));
          if (touched && nd === dir)
            notes.push(`${file}:${line}: folder '${spec}' had files moved out of it`);
          else if (nd !== dir || moved) {
            const ns = relative(to, nd) + (spec.endsWith('/') ? '/' : '');
            if (ns !== spec) edits.push({ start: node.getStart() + 1, end: node.getEnd() - 1, text: ns });
          }
        } else if (r) {
          const ns = render(r.style, to, newPath(plan, r.target));
          if (ns !== spec) edits.push({ start: node.getStart() + 1, end: node.getEnd() - 1, text: ns });
        } else if (moved && spec.startsWith('../') && !/\s/.test(spec)) {
          notes.push(`${file}:${line}: '${spec}' resolves to nothing; left as is in a moved file`);
        }
      }
    } else if (ts.isTemplateExpression(node)) {
      const head = node.head.text;
      if ((head.startsWith('./') || head.startsWith('../')) && (moved || touchesMoved(plan, file, head))) {
        const line = source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
        notes.push(`${file}:${line}: template path \`${head}\${…}\` not rewritten`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  if (moved)
    for (const m of text.matchAll(/import\.meta\.(dirname|filename|url)|__dirname|__filename/g)) {
      const line = source.getLineAndCharacterOfPosition(m.index).line + 1;
      notes.push(`${file}:${line}: a path built from ${m[0]} in a moved file; check it`);
    }
  return applyEdits(text, edits);
}

function touchesMoved(plan: Plan, file: string, head: string): boolean {
  const base = posix.normalize(posix.join(posix.dirname(file), head));
  return [...plan.files.keys()].some((f) => f.startsWith(base));
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Path mentions (repo-root, or `functions/`-relative with an extension) in any text. */
function pathRules(plan: Plan): [RegExp, string][] {
  const rules: [RegExp, string][] = [];
  // A repo-root path may also be written `./functions/...`; a short form may not (that is a relative import).
  const lead = String.raw`(?<=^|[^\w./@-]|(?<![\w.])\./)`;
  const strictLead = String.raw`(?<=^|[^\w./@-])`;
  for (const [from, to] of plan.folders)
    rules.push([new RegExp(`${lead}${escape(from)}(?=/|[^\\w/.-]|$)`, 'gm'), to]);
  const byLength = [...plan.files].sort((a, b) => b[0].length - a[0].length);
  for (const [from, to] of byLength) {
    const fromStem = from.replace(/\.[a-z]+$/, '');
    const toStem = to.replace(/\.[a-z]+$/, '');
    // Stem then an extension or a boundary: `functions/fleet/nodes.ts`, `functions/fleet/nodes.js`, `functions/fleet/nodes`.
    rules.push([new RegExp(`${lead}${escape(fromStem)}(?=\\.[a-z]+\\b|[^\\w/.-]|$)`, 'gm'), toStem]);
    if (from.startsWith('functions/') && to.startsWith('functions/')) {
      const s = fromStem.slice('functions/'.length);
      const t = toStem.slice('functions/'.length);
      rules.push([new RegExp(`${strictLead}${escape(s)}(?=\\.(ts|js)\\b)`, 'gm'), t]);
    }
  }
  return rules;
}

function rewriteText(rules: [RegExp, string][], text: string): string {
  let out = text;
  for (const [re, to] of rules) out = out.replace(re, to);
  return out;
}

function replaceSection(text: string, heading: string, before: string, body: string): string | undefined {
  const block = `${heading}\n\n${body.trimEnd()}\n\n`;
  const at = text.indexOf(`\n${heading}\n`);
  if (at >= 0) {
    const next = text.indexOf('\n## ', at + heading.length + 1);
    return text.slice(0, at + 1) + block + (next >= 0 ? text.slice(next + 1) : '');
  }
  const b = text.indexOf(`\n${before}\n`);
  if (b < 0) return undefined;
  return text.slice(0, b + 1) + block + text.slice(b + 1);
}

function main(): void {
  const args = new Set(process.argv.slice(2));
  const dryRun = args.has('--dry-run');
  const root = git(['rev-parse', '--show-toplevel'], process.cwd()).trim();
  const all = listFiles(root);
  const { plan, problems, applied } = buildPlan(all);
  if (applied) {
    console.log('Already applied: every destination exists and no source is left. Nothing to do.');
    return;
  }
  if (problems.length) {
    console.error(`Refusing to run:\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  if (
    !dryRun &&
    git(['status', '--porcelain', '--untracked-files=no'], root).trim() &&
    !args.has('--dirty')
  ) {
    console.error(
      'Refusing to run: the working tree has uncommitted changes (commit them, or pass --dirty).',
    );
    process.exit(1);
  }

  const fileSet = new Set(all);
  const dirs = new Set<string>();
  for (const f of all) for (let d = posix.dirname(f); d !== '.'; d = posix.dirname(d)) dirs.add(d);
  const rules = pathRules(plan);
  const notes: string[] = [];
  const outputs = new Map<string, string>();
  for (const file of all) {
    if (file === SELF || !TEXT_EXT.test(file) || file.startsWith('test/fixtures/agent/')) continue;
    const text = readFileSync(path.join(root, file), 'utf8');
    let next = CODE_EXT.test(file) ? rewriteCode(plan, fileSet, dirs, file, text, notes) : text;
    // Prose edits first: the path rules would otherwise turn their text into something else.
    for (const e of TEXT_EDITS.filter((x) => x.file === file)) {
      if (next.includes(e.from)) next = next.replace(e.from, e.to);
      else if (!next.includes(e.to))
        notes.push(`${file}: text edit not applied (not found): ${e.from.split('\n')[0]}`);
    }
    if (!SKIP_TEXT.has(file)) next = rewriteText(rules, next);
    for (const s of DOC_SECTIONS.filter((x) => x.file === file)) {
      const r = replaceSection(next, s.heading, s.before, s.body);
      if (r === undefined) notes.push(`${file}: section '${s.heading}' not placed ('${s.before}' not found)`);
      else next = r;
    }
    if (next !== text || plan.files.has(file)) outputs.set(file, next);
  }

  console.log(`Moves (${plan.files.size} files):`);
  for (const [from, to] of plan.files) console.log(`  ${from} → ${to}`);
  const rewritten = [...outputs]
    .filter(([f, t]) => t !== readFileSync(path.join(root, f), 'utf8'))
    .map(([f]) => f);
  console.log(`Rewritten: ${rewritten.length} files`);
  if (dryRun) {
    for (const f of rewritten) console.log(`  ${f}`);
    report(root, plan, notes, true);
    return;
  }

  for (const [from, to] of plan.files) {
    mkdirSync(path.join(root, posix.dirname(to)), { recursive: true });
    const tracked = git(['ls-files', '--', from], root).trim() !== '';
    if (tracked) git(['mv', from, to], root);
    else execFileSync('mv', [from, to], { cwd: root });
  }
  for (const [file, text] of outputs) writeFileSync(path.join(root, newPath(plan, file)), text);
  // Folders the moves emptied go too (git keeps no empty folder, the disk would).
  const emptied = [...new Set([...plan.files.keys()].map((f) => posix.dirname(f)))].sort(
    (a, b) => b.length - a.length,
  );
  for (const dir of emptied) {
    const full = path.join(root, dir);
    if (existsSync(full) && readdirSync(full).length === 0) rmdirSync(full);
  }
  git(
    [
      'add',
      '-A',
      '--',
      ...new Set([...plan.files.values(), ...[...outputs.keys()].map((f) => newPath(plan, f))]),
    ],
    root,
  );
  report(root, plan, notes, false);

  if (args.has('--verify')) {
    const run = (cmd: string, a: string[]) => {
      console.log(`\n$ ${cmd} ${a.join(' ')}`);
      execFileSync(cmd, a, { cwd: root, stdio: 'inherit' });
    };
    run('npx', ['tsc', '--noEmit']);
    run('npx', ['vitest', 'run', 'test/unit/architecture.test.ts']);
    run('npx', ['eslint', '.']);
  }
}

/** Mentions the rules did not place: old folders and short forms still named anywhere. */
function report(root: string, plan: Plan, notes: string[], dryRun: boolean): void {
  if (!dryRun) {
    const olds = [...new Set([...RETIRED, ...plan.folders.map(([f]) => f)])];
    const shorts = [...plan.files.keys()]
      .filter((f) => f.startsWith('functions/'))
      .map((f) => f.slice('functions/'.length).replace(/\.ts$/, ''));
    const pattern = [...olds.map(escape), ...shorts.map((s) => `(^|[^\\w/.-])${escape(s)}\\b`)].join('|');
    let hits = '';
    try {
      hits = git(['grep', '-nE', pattern, '--', '.', `:!${SELF}`, ':!package-lock.json'], root);
    } catch {
      hits = '';
    }
    for (const line of hits.split('\n').filter(Boolean))
      notes.push(`${line.slice(0, 200)}  (old name still mentioned)`);
  }
  if (notes.length) {
    console.log(`\nNot rewritten automatically (${notes.length}); check by hand:`);
    for (const n of notes) console.log(`  ${n}`);
  } else console.log('\nEverything was rewritten.');
  if (!dryRun) console.log('\nStaged. Then: npx tsc --noEmit && npx eslint . && git commit');
}

main();
