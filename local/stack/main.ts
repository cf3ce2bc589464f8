import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { startStack } from './stack.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT ?? '8000' },
    host: { type: 'string', default: '127.0.0.1' },
    'cdk-out': { type: 'string' },
    'keep-resources': { type: 'boolean', default: false },
    'no-permission-check': { type: 'boolean', default: false },
    context: { type: 'string', short: 'c', multiple: true, default: [] },
    env: { type: 'string', short: 'e', multiple: true, default: [] },
    'outputs-file': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(`Usage: npm run start:stack -- [--port 8000] [--host 127.0.0.1] [--cdk-out cdk.out] [-c key=value ...] [-e KEY=VALUE ...]
                                [--outputs-file outputs.json] [--keep-resources] [--no-permission-check]

Runs the synthesized CDK stack on the AWS emulator at AWS_ENDPOINT_URL: the template's table,
queues, schedules, bucket and parameters are created there (names prefixed per start), and each
API route runs the bundled function the template integrates it with. Every AWS call of a function
is checked against its role in the template; a denied one is refused and printed.

  --cdk-out         run this cloud assembly instead of synthesizing the app
  -c key=value      synth context over cdk.json's, as with cdk (e.g. -c apiAuth=false)
  -e KEY=VALUE      a variable added to every function's environment (e.g. -e LOG_LEVEL=DEBUG)
  --outputs-file    write the stack outputs as cdk deploy --outputs-file does (the suites read it)
  --keep-resources  leave the emulator resources in place on exit
  --no-permission-check  send the functions' AWS calls to the emulator unchecked`);
  process.exit(0);
}

if (!process.env.AWS_ENDPOINT_URL) {
  console.error(
    'start:stack needs AWS_ENDPOINT_URL (moto or LocalStack), e.g. AWS_ENDPOINT_URL=http://127.0.0.1:4566 npm run start:stack',
  );
  process.exit(1);
}
process.env.AWS_ACCESS_KEY_ID ??= 'test';
process.env.AWS_SECRET_ACCESS_KEY ??= 'test';

const pairs = (flag: string, list: string[] = []) =>
  Object.fromEntries(
    list.map((pair) => {
      const eq = pair.indexOf('=');
      if (eq <= 0) {
        console.error(`${flag} ${pair}: expected key=value`);
        process.exit(1);
      }
      return [pair.slice(0, eq), pair.slice(eq + 1)];
    }),
  );
const context = pairs('-c', values.context);
const environment = pairs('-e', values.env);

const stack = await startStack({
  context,
  environment,
  port: Number(values.port),
  host: values.host,
  cdkOut: values['cdk-out'] ? resolve(values['cdk-out']) : undefined,
  keepResources: values['keep-resources'],
  checkPermissions: !values['no-permission-check'],
  log: (line) => console.error(line),
});

const fns = Object.values(stack.functions).map(
  (f) => `    ${f.options.logicalId} (${f.options.memoryMb} MB, ${f.options.timeoutSeconds} s)`,
);
console.log(`GPU fleet control plane stack ${stack.assembly.stackName}, running locally (names prefixed ${stack.prefix})
  HTTP API:      ${stack.url}
  WebSocket API: ${stack.wsUrl}
  AWS APIs:      ${process.env.AWS_ENDPOINT_URL}
  API key:       ${stack.apiKey ? `in SSM at ${stack.outputs.ApiKeyParameter ?? '(see outputs)'}; send Authorization: Bearer <key>` : 'off'}
  functions:
${fns.join('\n')}
  outputs:
${Object.entries(stack.outputs)
  .map(([k, v]) => `    ${k}: ${v}`)
  .join('\n')}`);

if (values['outputs-file'])
  writeFileSync(
    values['outputs-file'],
    JSON.stringify({ [stack.assembly.stackName]: stack.outputs }, null, 2),
  );

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: shutting down`);
    stack.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
}
