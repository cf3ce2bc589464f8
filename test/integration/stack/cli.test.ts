import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, describe, expect, it } from 'vitest';
import { atIn, writeContractAssembly } from '../../fixtures/lambda-contract/assembly.js';
import { REPO_ROOT } from '../../e2e/harness.js';
import { describeWithMoto } from '../../harness/services.js';

const run = (args: string[], env: NodeJS.ProcessEnv) =>
  spawn(process.execPath, ['--import', 'tsx', 'local/stack/main.ts', ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });

describe('npm run start:stack (local/stack/main.ts) without an emulator', () => {
  it('refuses in one line and exits 1 when AWS_ENDPOINT_URL is unset', async () => {
    const child = run([], { ...process.env, AWS_ENDPOINT_URL: '' });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(1);
    expect(out).toBe('');
    expect(err.trim().split('\n')).toHaveLength(1);
    expect(err).toContain('AWS_ENDPOINT_URL');
  }, 30_000);
});

describeWithMoto('npm run start:stack (local/stack/main.ts) on moto', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stack-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs a cloud assembly, prints its URLs, writes its outputs, and removes its resources on SIGTERM', async () => {
    writeContractAssembly(join(dir, 'cdk.out'), atIn(3_600_000));
    const outputsFile = join(dir, 'outputs.json');
    const child = run(
      ['--cdk-out', join(dir, 'cdk.out'), '--port', '0', '--outputs-file', outputsFile],
      process.env,
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 30_000;
    while (!existsSync(outputsFile) && Date.now() < deadline && child.exitCode === null)
      await new Promise((r) => setTimeout(r, 100));
    const url = /HTTP API: +(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
    expect(url, out).toBeDefined();
    expect(out).toContain(`WebSocket API: ${url!.replace('http:', 'ws:')}/live`);
    const prefix = /names prefixed (\S+)\)/.exec(out)?.[1];
    expect(prefix, out).toBeDefined();
    const outputs = JSON.parse(readFileSync(outputsFile, 'utf8')) as Record<string, Record<string, string>>;
    expect(outputs.Contract).toMatchObject({ ApiUrl: `${url}/` });
    expect((await fetch(`${url}/plain`)).status).toBe(200);

    const sqs = new SQSClient({
      endpoint: process.env.AWS_ENDPOINT_URL,
      region: process.env.AWS_REGION ?? 'us-east-1',
    });
    const queueName = outputs.Contract!.WorkQueue!.split('/').pop()!;
    expect(queueName.startsWith(prefix!)).toBe(true);
    await sqs.send(new GetQueueUrlCommand({ QueueName: queueName }));

    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code, out).toBe(0);
    await expect(sqs.send(new GetQueueUrlCommand({ QueueName: queueName }))).rejects.toThrow();
    sqs.destroy();
  }, 60_000);
});
