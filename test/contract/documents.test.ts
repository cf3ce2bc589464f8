import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../../local/runtime.js';
import { FakeBedrock } from '../integration/commander/fake-bedrock.js';
import { call, GPU_WORKER, ScriptedAgent } from '../harness/scripted-agent.js';
import { documentExamples, missingKeys, type DocumentedExample } from './examples.js';

/**
 * Each document's own examples, sent as written to the local runtime, checked against the
 * documented status and shape. The fleet holds the nodes the documents name (agx0-2, Jetsons
 * with the documented labels; worker-001, a GPU worker with both documented models), and ids a
 * document invents (`train-a1b2c3d4`, `{task_id}`) become the ids its earlier examples created.
 */
const DOCUMENTS = [
  'nvidia-orchestrator-api.md',
  'training-job-orchestrator-api.md',
  'cluster-manager-api.md',
  'fleet-commander-api.md',
  'novita-gpu-instance-api.md',
];
const SDXL = 'SDXL_4GB_FP8.safetensors';
const REALVIS = 'RealVisXL_V5_Turbo.safetensors';

/** Object paths whose keys are data in the examples (labels, models by name, port maps). */
const RECORDS = ['.labels', '.models_loaded', '.ports', '.operations'];

/** Other ids a document uses for what an earlier example created. */
const DOC_ALIASES: Record<string, string[]> = { container_id: ['container123', 'abc123def456'] };

/** Parameters a document lists but shows in no example URL. */
const DOCUMENTED_QUERY: Record<string, string> = {
  'nvidia-orchestrator-api PUT /registry/endpoints/{endpoint_id}/status': 'status=UP',
};

/**
 * What a documented example gets instead of its documented answer, each a deliberate difference
 * listed in the README ("Deliberate differences from the documents"), asserted as such.
 */
const DIFFERENCES: Record<
  string,
  { status: number; detail: RegExp; why: string; when?: (e: DocumentedExample) => boolean }
> = {
  'fleet-commander-api POST /api/vision/generate': {
    status: 400,
    detail: /Unknown LoRA: detail_enhancer/,
    why: 'LoRAs are the user’s files; the example names one nobody uploaded',
    when: (e) => JSON.stringify(e.request ?? {}).includes('"lora"'),
  },
  'novita-gpu-instance-api POST /api/instances': {
    status: 400,
    detail: /webhookUrl refused/,
    why: 'webhook hosts must resolve to a public address (outbound checks); your-app.com does not here',
  },
  'novita-gpu-instance-api GET /api/instances/{instanceId}': {
    status: 404,
    detail: /INSTANCE_NOT_FOUND/,
    why: 'the create example before it is refused (above), so no instance exists to read',
  },
  'fleet-commander-api POST /api/build/build-and-deploy': {
    status: 400,
    detail: /field required/,
    why: 'the document gives no body; the route needs image_name, tag and dockerfile_path',
  },
  'fleet-commander-api POST /api/vision/loras/upload': {
    status: 415,
    detail: /multipart\/form-data/,
    why: 'the document gives no body; an upload is a multipart form with the file',
  },
  'training-job-orchestrator-api POST /jobs/train-a1b2c3d4/retry': {
    status: 409,
    detail: /Only failed jobs can be retried/,
    why: 'the example retries a failed job; the job the examples created is pending',
  },
  'fleet-commander-api POST /api/swarm/join-remote': {
    status: 502,
    detail: /did not join: connect: unsupported host\.install/,
    why: 'the example’s host is on a LAN this machine does not have; the simulated nodes cannot run installs (test/e2e/onboard.e2e.test.ts joins a real sshd host)',
  },
  'fleet-commander-api POST /api/build/build': {
    status: 502,
    detail: /could not run on agx0/,
    why: 'the simulated Jetsons have no image builder; a node that cannot build is a 502 naming it',
  },
};

/** Path parameters an answer provides, by the call that gave it: response field → parameters. */
const PROVIDES: [RegExp, Record<string, string[]>][] = [
  [
    /^POST \/(start\/container|containers\/[^/]+\/start)$/,
    { container_id: ['idOrName', 'instanceId'], image: ['imageId'] },
  ],
  [/^POST \/registry\/endpoints$/, { id: ['endpoint_id'] }],
  [/^POST \/api\/clusters\/$/, { id: ['cluster_id'] }],
  [/^POST \/api\/vault\/$/, { id: ['cred_id'] }],
  [/^POST \/api\/swarm\/services$/, { id: ['service_id'] }],
  [/^GET \/api\/swarm\/containers$/, { 'containers.0.id': ['container_id'] }],
  [/^POST \/api\/vision\/generate$/, { job_id: ['job_id'] }],
  [/^POST \/tasks$/, { task_id: ['task_id'] }],
  [/^POST \/api\/install-queue\/queue$/, { job_id: ['job_id'] }],
];
const at = (body: unknown, path: string): unknown =>
  path
    .split('.')
    .reduce<unknown>(
      (v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined),
      body,
    );

/** Keys a document shows that this control plane deliberately answers otherwise (README table). */
const DIFFERENT_KEYS: Record<string, string[]> = {
  'nvidia-orchestrator-api GET /health/detailed': ['.components.postgresql'],
  'nvidia-orchestrator-api GET /test/integration': ['.tests.postgresql'],
};

describe.each(DOCUMENTS)('the examples of %s, as written', (file) => {
  let rt: Runtime;
  const agents: { stop(): Promise<void> }[] = [];
  /** Documented id → the id the runtime gave, and path parameter → a real value. */
  const ids = new Map<string, string>();
  const params = new Map<string, string>([
    ['worker_id', 'worker-001'],
    ['node_id', 'agx0'],
  ]);

  let bedrock: FakeBedrock;
  beforeAll(async () => {
    // The AI routes talk to a Bedrock Converse double; the SDK signs with any credentials.
    process.env.AWS_ACCESS_KEY_ID ??= 'test';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
    bedrock = await new FakeBedrock().start();
    rt = await startRuntime({
      port: 0,
      env: {
        ...process.env,
        AWS_ENDPOINT_URL: undefined,
        LOG_LEVEL: 'SILENT',
        API_AUTH: 'false',
        COMMAND_WAIT_MS: '5000',
        NOVITA_API_KEY: undefined,
        AI_MODEL_ID: 'anthropic.claude-3-haiku-20240307-v1:0',
        AI_ENDPOINT_URL: bedrock.url,
        AUTO_JOIN_CREDENTIAL: 'jetson-default',
        // The build examples use the suite's registry, on loopback: outbound calls there are allowed by name.
        OUTBOUND_ALLOWLIST: new URL(process.env.REGISTRY_URL ?? 'http://127.0.0.1').hostname,
      },
    });
    // The credential the onboarding examples name (`cred-uuid`), stored in the vault.
    const cred = await call(rt.url, 'POST', '/api/vault/', {
      name: 'jetson-default',
      username: 'nvidia',
      password: 'nvidia',
    });
    expect(cred.status).toBe(201);
    ids.set('cred-uuid', cred.body.id);
    for (const name of ['agx0', 'agx1', 'agx2']) {
      const a = new ScriptedAgent(rt.url, name, {
        gpus: 1,
        labels: { cluster: 'vision', nvidia: 'true' },
        jetson: { l4t: '35.3.1', jetpack: '5.1.1', cuda: '11.4', cudnn: '8.6', model: 'Jetson AGX Orin' },
        // The exec example runs `nvidia-smi` on agx0 through the agent's own runner.
        allowExec: name === 'agx0',
      });
      await a.register();
      await a.heartbeat();
      a.start(300);
      agents.push(a);
    }
    for (const name of ['worker-001', 'worker-002']) {
      const w = new ScriptedAgent(rt.url, name, {
        ...GPU_WORKER,
        models: [SDXL, REALVIS],
        runMs: 50,
        heartbeatMs: 300,
      });
      await w.register();
      await w.heartbeat();
      w.start();
      agents.push(w);
    }
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    await rt?.stop();
    await bedrock?.stop();
  });

  /** The document's invented ids first, then its `{param}` templates. */
  const resolvePath = (path: string): string => {
    let out = path;
    for (const [documented, real] of ids) out = out.split(documented).join(encodeURIComponent(real));
    return out.replace(/\{(\w+)\}/g, (_, name: string) =>
      encodeURIComponent(params.get(name) ?? `{${name}}`),
    );
  };

  /** Learns the ids an answer created, by the documented answer's fields. */
  const learn = (documented: unknown, got: unknown) => {
    if (!documented || !got || typeof documented !== 'object' || typeof got !== 'object') return;
    for (const [k, v] of Object.entries(documented)) {
      const real = (got as Record<string, unknown>)[k];
      if (!/(^id$|_id$|Id$)/.test(k) || typeof v !== 'string' || typeof real !== 'string') continue;
      ids.set(v, real);
      params.set(k, real);
      if (k === 'id' || k === 'instanceId') params.set('instanceId', real);
    }
  };

  // Deletions last: a document's order may delete what a later example reads.
  const examples = documentExamples(file).sort(
    (a, b) => Number(a.method === 'DELETE') - Number(b.method === 'DELETE'),
  );
  it('has examples to check', () => {
    expect(examples.length).toBeGreaterThan(0);
  });

  it.each(examples.map((e, i) => [`${i + 1}. ${e.method} ${e.path}`, e] as const))(
    '%s',
    async (_title, e: DocumentedExample) => {
      const key = `${e.document} ${e.method} ${e.path.split('?')[0]}`;
      if (key === 'cluster-manager-api DELETE /tasks/{task_id}') {
        // The example cancels a task still waiting: submit one while no worker takes it.
        for (const a of agents) await a.stop();
        const queued = await call(rt.url, 'POST', '/tasks', {
          task_type: 'text_generation',
          model_name: 'llama-2-7b',
          input_data: { prompt: 'x' },
        });
        expect(queued.status).toBe(200);
        params.set('task_id', queued.body.task_id);
      }
      const extra = DOCUMENTED_QUERY[key];
      const path = resolvePath(e.path) + (extra ? `${e.path.includes('?') ? '&' : '?'}${extra}` : '');
      let request = e.request;
      if (request !== undefined) {
        let text = JSON.stringify(request);
        for (const [documented, real] of ids) text = text.split(`"${documented}"`).join(JSON.stringify(real));
        request = JSON.parse(text);
      }
      // A 409 from work still settling (a task finishing on a model to unload) is retried for a
      // while: on a loaded 2-core machine the task can take longer than a few seconds to finish.
      let res = await call(rt.url, e.method, path, request);
      const settleBy = Date.now() + 20_000;
      while (res.status === 409 && !DIFFERENCES[key] && Date.now() < settleBy) {
        await new Promise((r) => setTimeout(r, 250));
        res = await call(rt.url, e.method, path, request);
      }
      const difference = DIFFERENCES[key];
      if (difference && (difference.when?.(e) ?? true)) {
        expect(res.status, difference.why).toBe(difference.status);
        expect(JSON.stringify(res.body)).toMatch(difference.detail);
        if (key.endsWith('POST /api/vision/generate')) {
          // The same request without its LoRA runs, and its job is what later examples read.
          const { lora: _lora, lora_strength: _strength, ...rest } = e.request as Record<string, unknown>;
          const plain = await call(rt.url, 'POST', '/api/vision/generate', rest);
          expect(plain.status).toBe(200);
          params.set('job_id', plain.body.job_id);
        }
        return;
      }
      expect(res.status, `${e.method} ${path}: ${JSON.stringify(res.body)?.slice(0, 300)}`).toBeLessThan(300);
      learn(e.response, res.body);
      for (const [re, fields] of PROVIDES) {
        if (!re.test(`${e.method} ${e.path.split('?')[0]}`)) continue;
        for (const [field, names] of Object.entries(fields)) {
          const value = at(res.body, field);
          if (typeof value !== 'string') continue;
          for (const n of names) params.set(n, value);
          for (const alias of DOC_ALIASES[field] ?? []) ids.set(alias, value);
        }
      }
      if (e.response === undefined || res.status === 202) return;
      const missing = missingKeys(e.response, res.body, RECORDS).filter(
        (k) => !(DIFFERENT_KEYS[key] ?? []).includes(k),
      );
      expect(missing, `${e.method} ${path}: ${JSON.stringify(res.body)?.slice(0, 300)}`).toEqual([]);
    },
  );
});
