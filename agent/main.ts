#!/usr/bin/env node
// First: refuses a Node.js older than the agent needs, with one clear line.
import './runtime-check.js';
// Then: defines __dirname for CommonJS dependencies when this runs as a single-file bundle.
import './bundle-shim.js';
import { runAgent } from './agent.js';
import { ConfigError, loadConfig, USAGE } from './config.js';
import { createLogger } from './log.js';
import { AGENT_VERSION } from './version.js';

let parsed;
try {
  parsed = loadConfig(process.argv.slice(2), process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`fleet-agent: ${error.message}\n\n${USAGE}\n`);
  process.exit(2);
}
if (parsed.kind === 'help') {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (parsed.kind === 'version') {
  process.stdout.write(`${AGENT_VERSION}\n`);
  process.exit(0);
}

const config = parsed.config;
const log = createLogger({ level: config.logLevel, format: config.logFormat, fields: { node: config.nodeName } });
const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (controller.signal.aborted) {
      log.warn('second signal; exiting now', { signal });
      process.exit(130);
    }
    log.info('signal received; shutting down', { signal });
    controller.abort();
  });
}

try {
  await runAgent(config, controller.signal, { logger: log });
  process.exit(0);
} catch (error) {
  log.error('agent failed', { error });
  process.exit(1);
}
