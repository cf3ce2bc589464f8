// One Lambda execution environment: a worker thread that imports the function's bundle once (the
// init phase) and then runs invocations one at a time, as the Node.js managed runtime does.
// Only erasable TypeScript and node: imports, so Node runs this file without a loader.
import { registerHooks } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';

interface WorkerSetup {
  assetDir: string;
  /** `index.handler`: file `index.(mjs|js|cjs)` in assetDir, export `handler`. */
  handler: string;
  functionName: string;
  functionVersion: string;
  invokedFunctionArn: string;
  memoryLimitInMB: number;
  logGroupName: string;
  logStreamName: string;
  /** A folder whose node_modules stands for the runtime's own (the AWS SDK the bundles leave out). */
  runtimeModulesDir: string;
  callbackHandlers: boolean;
}

interface Invocation {
  type: 'invoke';
  id: number;
  event: unknown;
  awsRequestId: string;
  deadlineMs: number;
}

const setup = workerData as WorkerSetup;
const port = parentPort!;

// NODE_OPTIONS is the function's setting; of its flags, source maps are the one a thread can honour.
if (/(^|\s)--enable-source-maps(\s|$)/.test(process.env.NODE_OPTIONS ?? ''))
  process.setSourceMapsEnabled(true);

// The nodejs runtimes ship the AWS SDK v3 outside the bundle (/var/runtime/node_modules): a bare
// @aws-sdk/* or @smithy/* the bundle cannot resolve is looked up from the runtime's folder instead.
const runtimeParent = pathToFileURL(join(setup.runtimeModulesDir, 'package.json')).href;
registerHooks({
  resolve(specifier, context, nextResolve) {
    try {
      return nextResolve(specifier, context);
    } catch (error) {
      if (/^@(aws-sdk|smithy)\//.test(specifier))
        return nextResolve(specifier, { ...context, parentURL: runtimeParent });
      throw error;
    }
  },
});

function toError(error: unknown): { errorType: string; errorMessage: string; trace: string[] } {
  if (error instanceof Error)
    return { errorType: error.name, errorMessage: error.message, trace: (error.stack ?? '').split('\n') };
  return { errorType: 'Error', errorMessage: String(error), trace: [] };
}

type Handler = (
  event: unknown,
  context: unknown,
  callback?: (error: unknown, result?: unknown) => void,
) => unknown;

async function init(): Promise<Handler> {
  const dot = setup.handler.lastIndexOf('.');
  const file = setup.handler.slice(0, dot);
  const exportName = setup.handler.slice(dot + 1);
  const path = ['.mjs', '.js', '.cjs']
    .map((ext) => join(setup.assetDir, file + ext))
    .find((p) => existsSync(p));
  if (!path)
    throw Object.assign(new Error(`Cannot find module '${file}'`), { name: 'Runtime.ImportModuleError' });
  const mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  const fn = mod[exportName];
  if (typeof fn !== 'function')
    throw Object.assign(new Error(`${setup.handler} is undefined or not exported`), {
      name: 'Runtime.HandlerNotFound',
    });
  return fn as Handler;
}

async function run(handler: Handler, invocation: Invocation): Promise<unknown> {
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: setup.functionName,
    functionVersion: setup.functionVersion,
    invokedFunctionArn: setup.invokedFunctionArn,
    memoryLimitInMB: String(setup.memoryLimitInMB),
    awsRequestId: invocation.awsRequestId,
    logGroupName: setup.logGroupName,
    logStreamName: setup.logStreamName,
    getRemainingTimeInMillis: () => Math.max(0, invocation.deadlineMs - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
  // Callback-style handlers (three parameters) answer through the callback on the runtimes that
  // still support them; from nodejs24.x Lambda calls every handler as an async one.
  if (handler.length >= 3 && setup.callbackHandlers) {
    return new Promise((resolve, reject) => {
      const result = handler(invocation.event, context, (error, value) =>
        error ? reject(error) : resolve(value),
      );
      if (result && typeof (result as Promise<unknown>).then === 'function')
        (result as Promise<unknown>).then(resolve, reject);
    });
  }
  return handler(invocation.event, context);
}

let handler: Handler | undefined;
try {
  handler = await init();
  port.postMessage({ type: 'ready' });
} catch (error) {
  port.postMessage({ type: 'init-error', error: toError(error) });
}

port.on('message', (message: Invocation) => {
  if (message.type !== 'invoke' || !handler) return;
  void run(handler, message).then(
    // Lambda returns the result serialized as JSON: what cannot be serialized does not come back.
    (value) =>
      port.postMessage({ type: 'result', id: message.id, ok: true, value: JSON.stringify(value ?? null) }),
    (error: unknown) =>
      port.postMessage({ type: 'result', id: message.id, ok: false, error: toError(error) }),
  );
});
