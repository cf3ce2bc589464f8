import type { AnyRoute, HttpMethod } from './route.js';
import { documentOf } from './documents.js';
import type { ErrorStyle } from './errors.js';

interface Compiled {
  route: AnyRoute;
  regex: RegExp;
  names: string[];
  /** Literal characters in the template: more literal wins over more parametric. */
  weight: number;
  greedyCount: number;
}

export type Match =
  | { kind: 'found'; route: AnyRoute; params: Record<string, string> }
  | { kind: 'method'; allowed: HttpMethod[] }
  | { kind: 'none' };

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function compile(route: AnyRoute): Compiled {
  const names: string[] = [];
  let weight = 0;
  let greedyCount = 0;
  // A documented trailing slash is optional, as a missing one is: `/api/nodes` and `/api/nodes/` both match.
  const pattern = route.path
    .replace(/(.)\/$/, '$1')
    .split('/')
    .map((segment) => {
      const m = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(segment);
      if (!m) {
        weight += segment.length + 1;
        return escape(segment);
      }
      const name = m[1]!;
      names.push(name);
      if (route.greedy?.includes(name)) {
        greedyCount++;
        return '(.+?)';
      }
      return '([^/]+)';
    })
    .join('/');
  return { route, regex: new RegExp(`^${pattern}/?$`), names, weight, greedyCount };
}

/** Matches a raw (still percent-encoded) path against the route table. */
export class Router {
  private readonly compiled: Compiled[];

  constructor(readonly routes: AnyRoute[]) {
    this.compiled = routes
      .map(compile)
      .sort(
        (a, b) => a.greedyCount - b.greedyCount || b.weight - a.weight || b.names.length - a.names.length,
      );
  }

  match(method: string, rawPath: string): Match {
    const allowed = new Set<HttpMethod>();
    for (const c of this.compiled) {
      const m = c.regex.exec(rawPath);
      if (!m) continue;
      if (c.route.method !== method) {
        allowed.add(c.route.method);
        continue;
      }
      const params: Record<string, string> = {};
      try {
        c.names.forEach((name, i) => (params[name] = decodeURIComponent(m[i + 1]!)));
      } catch {
        continue; // malformed percent-encoding: not this route
      }
      return { kind: 'found', route: c.route, params };
    }
    return allowed.size ? { kind: 'method', allowed: [...allowed] } : { kind: 'none' };
  }
}

/** The error shape for a path no route claims: the Novita and training documents have their own. */
export function styleForPath(path: string): ErrorStyle {
  const doc = documentOf(path);
  return doc === 'novita' ? 'novita' : doc === 'training' ? 'training' : 'fastapi';
}
