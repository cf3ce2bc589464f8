import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { SecretsFileError } from '../functions/adapters/local-secrets.js';
import { ConfigError, loadConfig } from '../functions/core/config.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT ?? '8000' },
    host: { type: 'string', default: '127.0.0.1' },
    'data-dir': { type: 'string', default: process.env.DATA_DIR ?? '.data' },
    memory: { type: 'boolean', default: false },
    'no-agent': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(`Usage: npm start -- [--port 8000] [--host 127.0.0.1] [--data-dir .data] [--memory]

  --host      address to bind (default 127.0.0.1; use 0.0.0.0 to accept other machines)
  --data-dir  where embedded state lives between restarts
  --memory    keep all state in memory (nothing written to disk)
  --no-agent  do not run the agent for this machine (it runs when a container engine answers)`);
  process.exit(0);
}

// Settings first: some modules read them as they load, and a refused one is the operator's to fix.
try {
  loadConfig();
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
}
const { startRuntime } = await import('./runtime.js');

const runtime = await startRuntime({
  port: Number(values.port),
  host: values.host,
  dataDir: values.memory ? undefined : resolve(values['data-dir']!),
}).catch((error: unknown) => {
  // A damaged data folder is the operator's to repair: say what and where, without a stack.
  console.error(error instanceof SecretsFileError ? error.message : error);
  process.exit(1);
});

const mode =
  runtime.ctx.mode === 'embedded'
    ? 'embedded (dynalite, in-process queue and scheduler)'
    : `AWS APIs at ${runtime.ctx.config.AWS_ENDPOINT_URL}`;
console.log(`GPU fleet control plane listening on ${runtime.url}
  mode:     ${mode}
  API docs: ${runtime.url}/docs  (ReDoc: ${runtime.url}/redoc, OpenAPI: ${runtime.url}/openapi.json)`);

let agent: { stop: () => Promise<void> } | undefined;
if (!values['no-agent']) {
  const { startLocalAgent } = await import('./local-agent.js');
  const stateRoot = values.memory ? (await import('node:os')).tmpdir() : resolve(values['data-dir']!);
  const started = await startLocalAgent(runtime.url, stateRoot);
  if ('reason' in started) console.log(`  agent:    off (${started.reason}); run one with npm run agent`);
  else {
    agent = started;
    console.log('  agent:    running for this machine');
  }
}

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: shutting down`);
    Promise.resolve(agent?.stop())
      .then(() => runtime.stop())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(error);
          process.exit(1);
        },
      );
  });
}
