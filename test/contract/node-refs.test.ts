import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../../local/runtime.js';
import { OPERATION_DOCS } from '../../functions/core/operation-docs.js';
import { routes } from '../../functions/routes.js';
import { call, ScriptedAgent } from '../harness/scripted-agent.js';

/**
 * "A node is accepted everywhere by its name or its id": every operation that names a node (in
 * its path, query or body) is called twice, once with the node's id and once with its name, from
 * its documented example, and must be refused or accepted alike (the same 4xx, or both past the
 * lookup), never "unknown node". Derived from the
 * route table, so a new route that takes a node is audited without an edit here.
 */
const NODE_FIELDS = /^(node_id|worker_id|node_ids|worker_ids|manager_node_id)$/;
/** Calls that change their node: run last, on nodes of their own. */
const DESTRUCTIVE = new Set(['DELETE /api/nodes/{node_id}', 'POST /api/nodes/{node_id}/drain']);

function shapeKeys(schema: unknown): string[] {
  const s = schema as
    | {
        shape?: Record<string, unknown>;
        _zod?: { def?: { shape?: Record<string, unknown>; in?: unknown; schema?: unknown } };
      }
    | undefined;
  const def = s?._zod?.def;
  const shape = s?.shape ?? def?.shape;
  if (shape) return Object.keys(shape);
  if (def?.in) return shapeKeys(def.in);
  if (def?.schema) return shapeKeys(def.schema);
  return [];
}

interface Audited {
  key: string;
  method: string;
  path: string;
  fields: string[];
}

const audited: Audited[] = routes.flatMap((r) => {
  const inPath = [...r.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!).filter((p) => NODE_FIELDS.test(p));
  const inQuery = shapeKeys((r as { query?: unknown }).query).filter((f) => NODE_FIELDS.test(f));
  const inBody = shapeKeys((r as { body?: unknown }).body).filter((f) => NODE_FIELDS.test(f));
  const fields = [...inPath, ...inQuery, ...inBody];
  if (!fields.length || r.path.startsWith('/agent/')) return [];
  return [{ key: `${r.method} ${r.path}`, method: r.method, path: r.path, fields }];
});

/** What must differ between the two calls of an operation that creates something unique. */
const FRESH: Record<string, (call: number) => Record<string, unknown>> = {
  'POST /api/clusters/': (n) => ({ name: `refs-${n}` }),
  'POST /api/swarm/join-remote': (n) => ({ node_ip: `192.168.77.${n}` }),
  'POST /api/network/join': (n) => ({ ip: `192.168.78.${n}`, host: `192.168.78.${n}` }),
  'POST /api/install-queue/queue': (n) => ({ host: `192.168.79.${n}` }),
};
let calls = 0;

/** The documented example with every node reference replaced by `ref`. */
function request(op: Audited, ref: string, other: Record<string, string>) {
  const doc = OPERATION_DOCS[op.key];
  const route = routes.find((r) => `${r.method} ${r.path}` === op.key) as { query?: unknown; body?: unknown };
  let path = op.path;
  for (const m of op.path.matchAll(/\{([^}]+)\}/g)) {
    const name = m[1]!;
    const value = NODE_FIELDS.test(name) ? ref : (other[name] ?? doc?.params?.[name] ?? 'x');
    path = path.replace(`{${name}}`, encodeURIComponent(value));
  }
  const query = new URLSearchParams();
  for (const f of shapeKeys(route.query).filter((f) => op.fields.includes(f))) query.set(f, ref);
  let body = doc?.request ? { ...(doc.request as Record<string, unknown>) } : undefined;
  for (const f of shapeKeys(route.body).filter((f) => op.fields.includes(f))) {
    body ??= {};
    body[f] = f.endsWith('_ids') ? [ref] : ref;
  }
  const fresh = FRESH[op.key];
  if (fresh && body) for (const [k, v] of Object.entries(fresh(++calls))) if (k in body) body[k] = v;
  const qs = query.toString();
  return { path: qs ? `${path}?${qs}` : path, body };
}

describe('a node by its name or its id, everywhere', () => {
  let rt: Runtime;
  const agents: ScriptedAgent[] = [];
  beforeAll(async () => {
    rt = await startRuntime({
      port: 0,
      env: { ...process.env, LOG_LEVEL: 'SILENT', AWS_ENDPOINT_URL: undefined, COMMAND_WAIT_MS: '1500' },
    });
    for (const name of ['ref-a', 'ref-b', 'ref-c']) {
      const a = new ScriptedAgent(rt.url, name, {
        gpus: 1,
        allowExec: true,
        jetson: { l4t: '35.4.1', jetpack: '5.1.2', cuda: '11.4', cudnn: '8.6.0', model: 'AGX Orin' },
      });
      await a.register();
      await a.heartbeat();
      a.start(200);
      agents.push(a);
    }
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    await rt?.stop();
  });

  it('finds the operations that take a node', () => {
    // The route table is the source: a route that takes a node by another field name is missed, so name them.
    expect(audited.map((a) => a.key)).toEqual(
      expect.arrayContaining([
        'POST /api/nodes/{node_id}/cordon',
        'GET /api/nodes/{node_id}/metrics',
        'GET /workers/{worker_id}',
        'GET /tasks',
        'POST /start/container',
        'POST /api/ssh/exec-node',
        'POST /api/maintenance/quick-fix',
        'POST /models/assign',
      ]),
    );
  });

  it('answers the same for a name as for an id, and never "not found"', async () => {
    const cluster = await call(rt.url, 'POST', '/api/clusters/', { name: 'refs', description: 'audit' });
    const other = { cluster_id: String(cluster.body?.id ?? cluster.body?.cluster_id ?? 'refs') };
    const differ: string[] = [];
    const ordered = [
      ...audited.filter((a) => !DESTRUCTIVE.has(a.key)),
      ...audited.filter((a) => DESTRUCTIVE.has(a.key)),
    ];
    for (const op of ordered) {
      // A call that changes its node (drain, delete) is made by id on one node and by name on another.
      const [byIdNode, byNameNode] = DESTRUCTIVE.has(op.key)
        ? [agents[1]!, agents[2]!]
        : [agents[0]!, agents[0]!];
      const byId = request(op, byIdNode.nodeId, other);
      const byName = request(op, byNameNode.name, other);
      const a = await call(rt.url, op.method, byId.path, byId.body);
      const b = await call(rt.url, op.method, byName.path, byName.body);
      const notFound = (x: { status: number; body: unknown }) =>
        x.status === 404 && /node|worker/i.test(JSON.stringify(x.body));
      // Past the node lookup both go on to the agent, whose answer may race the wait (202 or 502).
      const refused = (x: { status: number }) => x.status >= 400 && x.status < 500;
      if (refused(a) !== refused(b) || (refused(a) && a.status !== b.status) || notFound(a) || notFound(b))
        differ.push(
          `${op.key}: id → ${a.status}, name → ${b.status} ${JSON.stringify(b.body).slice(0, 160)}`,
        );
    }
    expect(differ).toEqual([]);
    expect(ordered.length).toBeGreaterThanOrEqual(15);
  }, 120_000);
});
