import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Imported first by main.ts. Bundled into one ES module file, CommonJS dependencies lose their
 * `__dirname`/`__filename`, and ssh2 (dockerode → docker-modem) reads `__dirname` while loading.
 * Point them at the bundle's folder. Under tsx/Node's CommonJS loader each module has its own
 * values, which shadow these globals, so this changes nothing there.
 */
const g = globalThis as { __dirname?: string; __filename?: string };
if (typeof g.__filename !== 'string') g.__filename = fileURLToPath(import.meta.url);
if (typeof g.__dirname !== 'string') g.__dirname = dirname(g.__filename);
