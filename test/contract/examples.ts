import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One documented call: its method and path (query included), and the example request and response. */
export interface DocumentedExample {
  document: string;
  method: string;
  path: string;
  request?: unknown;
  response?: unknown;
}

export const SPEC_DIR = join(import.meta.dirname, '..', '..', '..', 'shared', 'spec');

const ENDPOINT = /\b(GET|POST|PUT|DELETE|PATCH)\s+`?(\/[\w\-/{}.?=&]*)`?/;

const json = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

/** The JSON value at the start of `lines` (a response printed after `# Response`), if any. */
function leadingJson(lines: string[]): unknown {
  for (let end = lines.length; end > 0; end--) {
    const v = json(lines.slice(0, end).join('\n'));
    if (v !== undefined) return v;
  }
  return undefined;
}

/** `curl [-X M] URL [-d '{...}']` calls of a shell example, each with the `# Response` after it. */
function curlExamples(document: string, block: string[]): DocumentedExample[] {
  const out: DocumentedExample[] = [];
  let current: DocumentedExample | undefined;
  for (let i = 0; i < block.length; i++) {
    const line = block[i]!.trim();
    if (line.startsWith('curl')) {
      // The command runs on to the next comment or command (a -d body spans lines).
      let j = i + 1;
      while (j < block.length && !/^\s*(#|curl\b)/.test(block[j]!)) j++;
      const args = block.slice(i, j).join('\n').replace(/\\\n/g, ' ');
      const method = /-X\s+(\w+)/.exec(args)?.[1] ?? (/\s-d\s/.test(args) ? 'POST' : 'GET');
      const url = /https?:\/\/[^\s/'"]+(\/[^\s'"]*)/.exec(args)?.[1] ?? '/';
      const body = /-d\s+'([\s\S]*?)'/.exec(args)?.[1];
      current = { document, method, path: url.replace(/"$/, ''), ...(body ? { request: json(body) } : {}) };
      out.push(current);
      i = j - 1;
    } else if (/^#\s*Response/i.test(line) && current && current.response === undefined) {
      const value = leadingJson(block.slice(i + 1));
      if (value !== undefined) current.response = value;
    }
  }
  return out;
}

/** Every example of one document, in document order. */
export function documentExamples(file: string): DocumentedExample[] {
  const document = file.replace(/\.md$/, '');
  const lines = readFileSync(join(SPEC_DIR, file), 'utf8').split('\n');
  const out: DocumentedExample[] = [];
  let current: DocumentedExample | undefined;
  let label = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('```')) {
      const lang = line.slice(3).trim();
      const block: string[] = [];
      let j = i + 1;
      for (; j < lines.length && !lines[j]!.startsWith('```'); j++) block.push(lines[j]!);
      if (lang === 'http') {
        const m = ENDPOINT.exec(block.join('\n'));
        if (m) out.push((current = { document, method: m[1]!, path: m[2]! }));
      } else if (lang === 'bash' || lang === 'sh') {
        const calls = curlExamples(document, block);
        out.push(...calls);
        if (calls.length) current = undefined;
      } else if (lang === 'json' && current) {
        const value = json(block.join('\n'));
        if (value !== undefined) {
          if (/request/i.test(label)) current.request ??= value;
          else current.response ??= value;
        }
      }
      i = j;
      continue;
    }
    if (line.startsWith('#')) {
      // A heading starts an endpoint or ends the last one (its examples stop at the next section).
      const heading = ENDPOINT.exec(line);
      current = heading ? { document, method: heading[1]!, path: heading[2]! } : undefined;
      if (current) out.push(current);
    }
    if (line.trim()) label = line;
  }
  return out;
}

/**
 * Where the documented shape is missing from `got`: every key of every documented object, the
 * first element of documented arrays. Paths ending in one of `records` hold data (labels, models
 * by name, a plan's operations of several kinds), so only their type is compared.
 */
export function missingKeys(doc: unknown, got: unknown, records: readonly string[], path = ''): string[] {
  if (doc === null || typeof doc !== 'object') return [];
  if (Array.isArray(doc)) {
    if (!Array.isArray(got)) return [`${path || '.'}: an array, got ${JSON.stringify(got)?.slice(0, 60)}`];
    if (records.some((r) => path.endsWith(r))) return [];
    return doc.length && got.length ? missingKeys(doc[0], got[0], records, `${path}[]`) : [];
  }
  // null: a documented object not there yet (a task's result before it finishes).
  if (got === null) return [];
  if (typeof got !== 'object' || Array.isArray(got))
    return [`${path || '.'}: an object, got ${JSON.stringify(got)?.slice(0, 60)}`];
  if (records.some((r) => path.endsWith(r))) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(doc)) {
    const at = `${path}.${k}`;
    if (!(k in got)) out.push(at);
    else out.push(...missingKeys(v, (got as Record<string, unknown>)[k], records, at));
  }
  return out;
}
