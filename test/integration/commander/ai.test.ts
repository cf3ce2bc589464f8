import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CommandEnvelope } from '../../../protocol/commands.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { FakeBedrock } from './fake-bedrock.js';
import { call, eventually, ScriptedAgent } from '../../harness/scripted-agent.js';

const MODEL_ID = 'anthropic.claude-3-haiku-20240307-v1:0';
const SECRET_IN_ERROR = 'hunter2-registry-pass';
const API_KEY = 'api-key-never-to-the-model-42';

/** Fails the start of one image with an error that quotes a credential, as a registry error might. */
class LeakyAgent extends ScriptedAgent {
  override execute(env: CommandEnvelope) {
    if (env.command.type === 'container.start' && env.command.spec.imageId === 'registry.local/bad:1') {
      return {
        status: 'failed' as const,
        output: {},
        error: `pull failed: auth password=${SECRET_IN_ERROR} rejected`,
      };
    }
    return super.execute(env);
  }
}

const captured: string[] = [];
function captureOutput(): () => void {
  const out = process.stdout.write;
  const err = process.stderr.write;
  const grab = (chunk: unknown): boolean => {
    captured.push(String(chunk));
    return true;
  };
  process.stdout.write = grab as typeof process.stdout.write;
  process.stderr.write = grab as typeof process.stderr.write;
  return () => {
    process.stdout.write = out;
    process.stderr.write = err;
  };
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

const aiEnv = (extra: Record<string, string | undefined>) => ({
  ...process.env,
  AWS_ENDPOINT_URL: undefined,
  LOG_LEVEL: 'INFO',
  AI_MODEL_ID: MODEL_ID,
  ...extra,
});

describe('AI Assistant API (embedded runtime, Bedrock Converse test double)', () => {
  let rt: Runtime;
  let fake: FakeBedrock;
  let agent: LeakyAgent;
  let restore: () => void;
  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);

  beforeAll(async () => {
    // The SDK signs with whatever credentials it finds; the double accepts any.
    process.env.AWS_ACCESS_KEY_ID ??= 'test';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
    restore = captureOutput();
    fake = await new FakeBedrock().start();
    rt = await startRuntime({ port: 0, env: aiEnv({ AI_ENDPOINT_URL: fake.url, AI_TIMEOUT_MS: '1500' }) });
    await rt.ctx.secrets.put('api-key', API_KEY);

    agent = new LeakyAgent(rt.url, 'agx0', { gpus: 2, memoryMb: 32_768 });
    await agent.register();
    await agent.heartbeat();
    agent.start(200);
    expect(
      (await api('POST', '/api/swarm/services', { name: 'sdxl', image: 'registry.local/sdxl:1' })).status,
    ).toBe(201);
    // Its start fails on the node: a failed command with the credential in its error.
    await api('POST', '/api/swarm/services', { name: 'bad', image: 'registry.local/bad:1' });
    await agent.stop();

    // The sdxl copy dies with 137; the node reports hot, busy GPUs and its tegrastats.
    const sdxl = [...agent.containers.values()].find((c) => c.imageId === 'registry.local/sdxl:1')!;
    Object.assign(sdxl, { state: 'exited', exitCode: 137 });
    const gpu = (index: number, util: number, temp: number, power: number) => ({
      index,
      uuid: `GPU-${index}`,
      name: 'NVIDIA H100',
      utilizationGpu: util,
      utilizationMemory: 50,
      memoryTotalMiB: 81_559,
      memoryUsedMiB: 70_001,
      memoryFreeMiB: 11_558,
      temperatureC: temp,
      powerDrawW: power,
      powerLimitW: 700,
    });
    const beat = await call(
      rt.url,
      'POST',
      '/agent/heartbeat',
      {
        metrics: {
          cpuPercent: 91.5,
          memoryUsedMb: 30_123,
          memoryTotalMb: 32_768,
          diskUsedGb: 97,
          diskTotalGb: 100,
          gpus: [gpu(0, 97, 88.5, 650.25), gpu(1, 3, 41, 80)],
          tegrastats: { ramUsedMb: 777, temperatures: { gpu: 61.25 } },
        },
        containers: [...agent.containers.values()].map(({ cpu: _c, mem: _m, ...c }) => ({
          ...c,
          stats: null,
        })),
        loadedModels: ['sdxl-base'],
      },
      agent.auth,
    );
    expect(beat.status).toBe(200);
    await eventually(async () => {
      const listed = await api('GET', '/api/swarm/containers');
      expect(listed.body.containers.some((c: { status: string }) => c.status === 'exited')).toBe(true);
    });
  });
  beforeEach(() => {
    // Whatever a test left unconsumed must not answer the next one.
    fake.script.length = 0;
  });
  afterAll(async () => {
    await agent?.stop();
    await rt?.stop();
    await fake?.stop();
    restore?.();
  });

  it('chat about a node: its real state is in the prompt, the answer in the documented shape', async () => {
    fake.script.push({
      kind: 'text',
      text: '{"response": "GPU 0 on agx0 is at 88.5 °C under 97% load.", "suggestions": ["Check fan speed", "Reduce workload"]}',
    });
    const calls = fake.calls.length;
    const res = await api('POST', '/api/ai/chat', {
      message: 'Why is agx0 showing high GPU temperature?',
      context: { node_id: 'agx0' },
    });

    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      response: 'GPU 0 on agx0 is at 88.5 °C under 97% load.',
      suggestions: ['Check fan speed', 'Reduce workload'],
    });
    expect(fake.calls.length).toBe(calls + 1);
    const sent = fake.calls.at(-1)!;
    expect(sent.modelId).toBe(MODEL_ID);
    expect(sent.authorization).toMatch(/^AWS4-HMAC-SHA256 /);
    expect(sent.body.system?.[0]?.text).toContain('{"response"');
    expect(sent.body.inferenceConfig?.maxTokens).toBe(1024);
    expect(sent.body.messages).toHaveLength(1);
    expect(sent.body.messages[0]!.role).toBe('user');
    expect(fake.lastPrompt()).toContain('Question: Why is agx0 showing high GPU temperature?');

    const state = fake.lastState() as any; // eslint-disable-line @typescript-eslint/no-explicit-any -- the prompt's JSON
    expect(state.node).toMatchObject({
      id: agent.nodeId,
      name: 'agx0',
      status: 'online',
      loaded_models: ['sdxl-base'],
    });
    expect(state.metrics).toMatchObject({
      cpu_percent: 91.5,
      memory_used_mb: 30_123,
      disk_used_gb: 97,
      disk_total_gb: 100,
    });
    expect(state.metrics.gpus[0]).toEqual({
      index: 0,
      name: 'NVIDIA H100',
      utilization_percent: 97,
      memory_used_mib: 70_001,
      memory_total_mib: 81_559,
      temperature_c: 88.5,
      power_draw_w: 650.25,
      power_limit_w: 700,
    });
    expect(state.metrics.tegrastats).toEqual({ ramUsedMb: 777, temperatures: { gpu: 61.25 } });
    const died = state.containers.find(
      (c: { image?: string; status?: string }) =>
        c.image === 'registry.local/sdxl:1' && c.status === 'exited',
    );
    expect(died).toMatchObject({ exit_code: 137, engine_state: 'exited' });
    const failedStart = state.recent_failures.find(
      (f: { kind: string; type?: string }) => f.kind === 'command' && f.type === 'container.start',
    );
    expect(failedStart.error).toBe('pull failed: auth password=[redacted] rejected');
    expect(fake.lastPrompt()).not.toContain(SECRET_IN_ERROR);
  });

  it('troubleshoot: the node, the issue and its failures go in; {response, suggestions, node_id} comes out', async () => {
    fake.script.push({
      kind: 'text',
      text: '{"response": "The sdxl copy was OOM-killed (exit 137).", "suggestions": ["Raise memory_limit"]}',
    });
    const res = await api('POST', '/api/ai/troubleshoot', {
      node_id: agent.nodeId,
      issue: 'container keeps restarting',
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      response: 'The sdxl copy was OOM-killed (exit 137).',
      suggestions: ['Raise memory_limit'],
      node_id: agent.nodeId,
    });
    expect(fake.lastPrompt()).toContain('Troubleshoot node agx0. Reported issue: container keeps restarting');
    const state = fake.lastState() as { containers: { exit_code?: number }[] };
    expect(state.containers.some((c) => c.exit_code === 137)).toBe(true);
    // Without an issue it still asks for a diagnosis.
    const general = await api('POST', '/api/ai/troubleshoot', { node_id: 'agx0' });
    expect(general.status).toBe(200);
    expect(fake.lastPrompt()).toContain('No specific symptom given');
  });

  it('chat without a node: a fleet summary, and no secret of the vault or the API key reaches the model', async () => {
    const vaultPassword = 'vault-pass-Zq81!x';
    expect(
      (await api('POST', '/api/vault/', { name: 'agx-ssh', username: 'nvidia', password: vaultPassword }))
        .status,
    ).toBeLessThan(300);
    const res = await api('POST', '/api/ai/chat', {
      message: `How is the fleet? (my key is ${API_KEY}, token=abc123secret)`,
    });
    expect(res.status).toBe(200);
    const state = fake.lastState() as any; // eslint-disable-line @typescript-eslint/no-explicit-any -- the prompt's JSON
    expect(state.fleet).toEqual({ nodes_total: 1, nodes_online: 1, nodes_offline: 0 });
    expect(state.nodes[0]).toMatchObject({ name: 'agx0', cpu: 91.5, gpu: 50, temperature: 88.5 });
    expect(state.nodes[0].gpus[0]).toMatchObject({
      utilization_percent: 97,
      temperature_c: 88.5,
      power_draw_w: 650.25,
    });
    expect(state.services).toEqual(
      expect.arrayContaining([{ name: 'sdxl', image: 'registry.local/sdxl:1', desired: 1 }]),
    );
    const prompt = fake.lastPrompt();
    for (const secret of [vaultPassword, API_KEY, 'abc123secret', SECRET_IN_ERROR, agent.token])
      expect(prompt).not.toContain(secret);
    expect(prompt).toContain('token=[redacted]');
  });

  it('falls back to the whole text when the model does not answer the JSON asked for', async () => {
    const cases: [string, { response: string; suggestions: string[] }][] = [
      ['Just restart the container.', { response: 'Just restart the container.', suggestions: [] }],
      [
        'Here you go:\n```json\n{"response": "Fenced", "suggestions": ["a", 7, "b"]}\n```',
        { response: 'Fenced', suggestions: ['a', 'b'] },
      ],
      ['{"answer": "no response field"}', { response: '{"answer": "no response field"}', suggestions: [] }],
      ['{"response": "no list", "suggestions": "restart"}', { response: 'no list', suggestions: [] }],
      [
        '{"response": "truncated", "suggestions": ["a"',
        { response: '{"response": "truncated", "suggestions": ["a"', suggestions: [] },
      ],
    ];
    for (const [text, expected] of cases) {
      fake.script.push({ kind: 'text', text });
      const res = await api('POST', '/api/ai/chat', { message: 'help' });
      expect(res.status).toBe(200);
      expect(res.body).toEqual(expected);
    }
  });

  it('refuses bad requests before calling the model: 400 for a missing or empty message, 404 for an unknown node', async () => {
    const calls = fake.calls.length;
    const missing = await api('POST', '/api/ai/chat', {});
    const empty = await api('POST', '/api/ai/chat', { message: '   ' });
    const notString = await api('POST', '/api/ai/chat', { message: 42 });
    const noNode = await api('POST', '/api/ai/troubleshoot', { issue: 'x' });
    const emptyIssue = await api('POST', '/api/ai/troubleshoot', { node_id: 'agx0', issue: '' });
    const unknownChat = await api('POST', '/api/ai/chat', { message: 'hi', context: { node_id: 'ghost' } });
    const unknownTs = await api('POST', '/api/ai/troubleshoot', { node_id: 'ghost', issue: 'x' });

    expect(missing.status).toBe(400);
    expect(missing.body.detail[0]).toMatchObject({ loc: ['body', 'message'] });
    expect(empty.status).toBe(400);
    expect(empty.body.detail[0]).toMatchObject({ loc: ['body', 'message'], msg: 'must not be empty' });
    expect(notString.status).toBe(400);
    expect(noNode.status).toBe(400);
    expect(noNode.body.detail[0].loc).toEqual(['body', 'node_id']);
    expect(emptyIssue.status).toBe(400);
    expect(unknownChat.status).toBe(404);
    expect(unknownChat.body).toEqual({ detail: 'Node ghost not found' });
    expect(unknownTs.status).toBe(404);
    expect(fake.calls.length).toBe(calls);
  });

  it('answers 503 in its own words when Bedrock refuses, throttles or hangs', async () => {
    fake.script.push({ kind: 'validation', message: 'The provided model identifier is invalid.' });
    const refused = await api('POST', '/api/ai/chat', { message: 'hi' });
    // The SDK retries a throttle once: both tries are throttled.
    fake.script.push({ kind: 'throttle' }, { kind: 'throttle' });
    const before = fake.calls.length;
    const throttled = await call(rt.url, 'POST', '/api/ai/chat', { message: 'hi' });
    const throttleTries = fake.calls.length - before;
    fake.script.length = 0;
    fake.script.push({ kind: 'hang', ms: 4000 });
    const slow = await api('POST', '/api/ai/troubleshoot', { node_id: 'agx0' });

    expect(refused.status).toBe(503);
    expect(refused.body).toEqual({
      detail:
        'The AI model refused the request (ValidationException); check AI_MODEL_ID, AI_REGION and model access',
    });
    expect(throttled.status).toBe(503);
    expect(throttled.body.detail).toContain('throttling');
    expect(throttleTries).toBe(2);
    expect(slow.status).toBe(503);
    expect(slow.body).toEqual({ detail: 'The AI model did not answer in time' });
  });

  it('a throttled answer says when to retry', async () => {
    fake.script.length = 0;
    fake.script.push({ kind: 'throttle' }, { kind: 'throttle' });
    const res = await fetch(`${rt.url}/api/ai/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'hi' }),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
  });

  it('answers 503 when no model is reachable or the assistant is disabled', async () => {
    const port = await closedPort();
    const unreachable = await startRuntime({
      port: 0,
      env: aiEnv({ AI_ENDPOINT_URL: `http://127.0.0.1:${port}` }),
    });
    const disabled = await startRuntime({
      port: 0,
      env: aiEnv({ AI_ENDPOINT_URL: fake.url, AI_ENABLED: 'false' }),
    });
    try {
      const calls = fake.calls.length;
      const a = await call(unreachable.url, 'POST', '/api/ai/chat', { message: 'hi' });
      const b = await call(disabled.url, 'POST', '/api/ai/chat', { message: 'hi' });
      expect(a.status).toBe(503);
      expect(a.body.detail).toMatch(/^The AI model is unreachable/);
      expect(b.status).toBe(503);
      expect(b.body).toEqual({ detail: 'The AI assistant is disabled (AI_ENABLED=false)' });
      expect(fake.calls.length).toBe(calls);
    } finally {
      await unreachable.stop();
      await disabled.stop();
    }
  });

  it('logs no node data from the prompt at INFO', async () => {
    const logs = captured.join('');
    // The logger wrote (requests, answers), so what it leaves out is a real absence.
    expect(logs).toContain('"ai answer"');
    for (const fragment of [
      '650.25',
      '61.25',
      '30123',
      'Fleet state recorded',
      SECRET_IN_ERROR,
      'container keeps restarting',
      API_KEY,
    ]) {
      expect(logs).not.toContain(fragment);
    }
  });
});
