import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';

export interface LambdaFunctionOptions {
  logicalId: string;
  functionName: string;
  arn: string;
  /** The unpacked bundle (`asset.<hash>`). */
  assetDir: string;
  /** `index.handler`. */
  handler: string;
  /** The function's environment, as Lambda sets it (its variables and the runtime's own). */
  env: Record<string, string>;
  memoryMb: number;
  timeoutSeconds: number;
  /** Concurrent execution environments at most; further invocations wait for a free one. */
  maxConcurrency: number;
  runtimeModulesDir: string;
  /** `nodejs22.x`...: before nodejs24.x, Lambda answers callback-style handlers through the callback. */
  runtime: string;
}

export interface LambdaError {
  errorType: string;
  errorMessage: string;
  trace?: string[];
}

export type InvokeResult =
  | { ok: true; /** The JSON the function returned. */ payload: string; requestId: string }
  | { ok: false; error: LambdaError; requestId: string; timedOut: boolean };

interface Instance {
  worker: Worker;
  busy: boolean;
  ready: Promise<void>;
  pending?: { id: number; resolve: (r: InvokeResult) => void; requestId: string; timer: NodeJS.Timeout };
}

const WORKER_URL = new URL('./lambda-worker.ts', import.meta.url);
/** A synchronous invocation's response may be 6 MB at most (Lambda quotas). */
const MAX_RESPONSE_BYTES = 6_291_556;

/**
 * One Lambda function: a pool of execution environments (worker threads with the function's own
 * environment), each initialized once and serving one invocation at a time. The pool grows on
 * demand up to maxConcurrency; a timeout ends the environment it happened in.
 */
export class LambdaFunction {
  private readonly instances = new Set<Instance>();
  private readonly waiting: (() => void)[] = [];
  private nextId = 1;
  private stopped = false;
  /** Execution environments started (each one ran the init phase once). */
  initCount = 0;
  /** Invocations handed to this function. */
  invocations = 0;
  /** The most invocations that ran at the same time. */
  peakConcurrency = 0;
  private running = 0;

  constructor(readonly options: LambdaFunctionOptions) {}

  /** Execution environments alive now. */
  get environments(): number {
    return this.instances.size;
  }

  async invoke(event: unknown): Promise<InvokeResult> {
    const requestId = randomUUID();
    this.invocations++;
    if (this.stopped)
      return {
        ok: false,
        requestId,
        timedOut: false,
        error: { errorType: 'ServiceException', errorMessage: 'function stopped' },
      };
    const instance = await this.acquire();
    try {
      await instance.ready;
    } catch (error) {
      this.discard(instance);
      return { ok: false, requestId, timedOut: false, error: error as LambdaError };
    }
    this.running++;
    this.peakConcurrency = Math.max(this.peakConcurrency, this.running);
    try {
      return await this.run(instance, event, requestId);
    } finally {
      this.running--;
      instance.busy = false;
      this.waiting.shift()?.();
    }
  }

  private run(instance: Instance, event: unknown, requestId: string): Promise<InvokeResult> {
    const timeoutMs = this.options.timeoutSeconds * 1000;
    const id = this.nextId++;
    return new Promise<InvokeResult>((resolve) => {
      const timer = setTimeout(() => {
        // The runtime is stopped mid-invocation: the environment does not survive a timeout.
        instance.pending = undefined;
        this.discard(instance);
        resolve({
          ok: false,
          requestId,
          timedOut: true,
          error: {
            errorType: 'Sandbox.Timedout',
            errorMessage: `${requestId} Task timed out after ${this.options.timeoutSeconds.toFixed(2)} seconds`,
          },
        });
      }, timeoutMs);
      instance.pending = { id, resolve, requestId, timer };
      instance.worker.postMessage({
        type: 'invoke',
        id,
        event,
        awsRequestId: requestId,
        deadlineMs: Date.now() + timeoutMs,
      });
    });
  }

  /** An idle environment, a new one while under the limit, or the next one freed. */
  private async acquire(): Promise<Instance> {
    for (;;) {
      if (this.stopped) throw new Error(`function ${this.options.functionName} stopped`);
      for (const instance of this.instances) {
        if (!instance.busy) {
          instance.busy = true;
          return instance;
        }
      }
      if (this.instances.size < this.options.maxConcurrency) {
        const instance = this.start();
        instance.busy = true;
        return instance;
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  private start(): Instance {
    const o = this.options;
    this.initCount++;
    const worker = new Worker(WORKER_URL, {
      env: o.env,
      workerData: {
        assetDir: o.assetDir,
        handler: o.handler,
        functionName: o.functionName,
        functionVersion: '$LATEST',
        invokedFunctionArn: o.arn,
        memoryLimitInMB: o.memoryMb,
        logGroupName: `/aws/lambda/${o.functionName}`,
        logStreamName: `${new Date().toISOString().slice(0, 10).replace(/-/g, '/')}/[$LATEST]${randomUUID().replace(/-/g, '')}`,
        runtimeModulesDir: o.runtimeModulesDir,
        callbackHandlers: Number(/^nodejs(\d+)/.exec(o.runtime)?.[1] ?? 24) < 24,
      },
      // The function's memory setting bounds the heap, as it bounds the sandbox on Lambda.
      resourceLimits: { maxOldGenerationSizeMb: o.memoryMb },
    });
    let settle: { resolve: () => void; reject: (e: LambdaError) => void } | undefined;
    const ready = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    ready.catch(() => undefined);
    const instance: Instance = { worker, busy: false, ready };
    worker.on(
      'message',
      (message: { type: string; id?: number; ok?: boolean; value?: string; error?: LambdaError }) => {
        if (message.type === 'ready') settle?.resolve();
        else if (message.type === 'init-error') settle?.reject(message.error!);
        else if (message.type === 'result') {
          const pending = instance.pending;
          if (!pending || pending.id !== message.id) return;
          clearTimeout(pending.timer);
          instance.pending = undefined;
          const tooLarge = message.ok && Buffer.byteLength(message.value!) > MAX_RESPONSE_BYTES;
          const error: LambdaError | undefined = tooLarge
            ? {
                errorType: 'Function.ResponseSizeTooLarge',
                errorMessage: `Response payload size exceeded maximum allowed payload size (${MAX_RESPONSE_BYTES} bytes).`,
              }
            : message.error;
          pending.resolve(
            message.ok && !tooLarge
              ? { ok: true, payload: message.value!, requestId: pending.requestId }
              : { ok: false, error: error!, requestId: pending.requestId, timedOut: false },
          );
        }
      },
    );
    const crashed = (error: LambdaError) => {
      settle?.reject(error);
      const pending = instance.pending;
      if (pending) {
        clearTimeout(pending.timer);
        instance.pending = undefined;
        pending.resolve({ ok: false, error, requestId: pending.requestId, timedOut: false });
      }
      this.instances.delete(instance);
    };
    worker.on('error', (error) =>
      crashed({
        errorType: 'Runtime.ExitError',
        errorMessage: `RequestId: runtime exited: ${error.message}`,
        trace: (error.stack ?? '').split('\n'),
      }),
    );
    worker.on('exit', (code) =>
      crashed({
        errorType: 'Runtime.ExitError',
        errorMessage: `Runtime exited with error: exit status ${code}`,
      }),
    );
    this.instances.add(instance);
    return instance;
  }

  private discard(instance: Instance): void {
    this.instances.delete(instance);
    void instance.worker.terminate();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const all = [...this.instances];
    this.instances.clear();
    await Promise.all(all.map((i) => i.worker.terminate()));
    for (const wake of this.waiting.splice(0)) wake();
  }
}
