import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConsoleFiles } from '../web/build.js';

/** What every console file is served with: no inline script, nothing from another origin. */
export const CONSOLE_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

/**
 * The console at `/` (index.html, assets/, config.json) for the local runtime. Built from web/src
 * with esbuild on the first request, so `npm start` serves it with no build step; a build that
 * fails answers 500 and is tried again on the next request.
 */
export function consoleStatic(): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  let files: Promise<ConsoleFiles> | undefined;
  const load = () => {
    files ??= import('../web/build.js').then((m) => m.buildConsole());
    files.catch(() => (files = undefined));
    return files;
  };
  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const path = (req.url ?? '/').split('?')[0]!;
    let name: string;
    if (path === '/' || path === '/index.html') name = 'index.html';
    else if (path === '/config.json') name = 'config.json';
    else if (path === '/assets/app.js' || path === '/assets/app.css') name = path.slice(1);
    else return false;
    if (name === 'config.json') {
      // Same origin: the API and the WebSocket streams are on this server.
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', ...CONSOLE_HEADERS });
      res.end(JSON.stringify({ apiUrl: '', wsUrl: '' }));
      return true;
    }
    let built: ConsoleFiles;
    try {
      built = await load();
    } catch (error) {
      console.error('console build failed', error);
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ detail: 'The console could not be built' }));
      return true;
    }
    const f = built.get(name)!;
    res.writeHead(200, {
      'content-type': f.type,
      'content-length': String(f.body.length),
      'cache-control': 'no-cache',
      ...CONSOLE_HEADERS,
    });
    res.end(req.method === 'HEAD' ? undefined : f.body);
    return true;
  };
}
