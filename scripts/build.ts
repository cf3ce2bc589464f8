import { mkdir } from 'node:fs/promises';
import { build } from 'esbuild';
import { esbuildOptions } from '../lib/bundling.js';
import { EVENTS_ENTRY, ROUTE_GROUPS, WEBSOCKET_ENTRY, groupEntry } from '../lib/groups.js';

/**
 * Bundles every Lambda entry exactly as the CDK stack does (one minified file each) into
 * dist/functions/, and the agent into dist/agent.mjs.
 */
await mkdir('dist/functions', { recursive: true });
const entries = [...ROUTE_GROUPS.map((g) => ({ name: g, entry: groupEntry(g) })), { name: 'events', entry: EVENTS_ENTRY }, { name: 'websocket', entry: WEBSOCKET_ENTRY }];
for (const { name, entry } of entries) {
  await build(esbuildOptions(entry, `dist/functions/${name}.mjs`));
  console.log(`bundled dist/functions/${name}.mjs`);
}
await import('../agent/build.js');
