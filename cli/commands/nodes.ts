import { Client, makeUi } from '../client.js';
import { configPath, resolveTarget, writeSaved } from '../config.js';
import { CliError, EXIT } from '../errors.js';
import { details, printJson, table } from '../output.js';
import { type Globals, program, session } from '../program.js';

// ------------------------------------------------------------------ login

program
  .command('login')
  .description(`check the control plane and save its URL and API key (${configPath()}, mode 0600)`)
  .option('--url <url>', 'control plane URL')
  .option('--api-key <key>', 'API key (with API_AUTH=true)')
  .action(async (opts: { url?: string; apiKey?: string }) => {
    const g = program.opts<Globals>();
    const target = await resolveTarget({
      ...((opts.url ?? g.url) ? { url: opts.url ?? g.url } : {}),
      ...((opts.apiKey ?? g.apiKey) ? { apiKey: opts.apiKey ?? g.apiKey } : {}),
    });
    const client = new Client(target, makeUi(!!g.json));
    const health = await client.get<{ status?: string }>('/health');
    // A user route: proves the key (or that auth is off) before it is saved.
    await client.get('/api/nodes/?limit=1');
    await writeSaved({ url: target.url, ...(target.apiKey ? { apiKey: target.apiKey } : {}) });
    if (g.json) printJson({ url: target.url, config: configPath(), health: health.status ?? null });
    else
      console.log(
        `logged in to ${target.url} (health ${health.status ?? 'unknown'}); saved in ${configPath()}`,
      );
  });

// ------------------------------------------------------------------ nodes

export interface NodeRow {
  id: string;
  name: string;
  status: string;
  [k: string]: unknown;
}

/** Every node, page after page (the API answers 1,000 at a time). */
export async function allNodes(client: Client): Promise<NodeRow[]> {
  const nodes: NodeRow[] = [];
  let cursor: string | null = null;
  do {
    const path: string = cursor === null ? '/api/nodes/' : `/api/nodes/?cursor=${encodeURIComponent(cursor)}`;
    const page = await client.get<{ nodes: NodeRow[]; next_cursor?: string | null }>(path);
    nodes.push(...page.nodes);
    cursor = page.next_cursor ?? null;
  } while (cursor !== null);
  return nodes;
}

/** Every managed container, page after page (the API answers 1,000 at a time), or one node's. */
export async function allContainers(client: Client, nodeId?: string): Promise<ContainerRow[]> {
  if (nodeId !== undefined)
    return (
      await client.get<{ containers: ContainerRow[] }>(`/containers?node_id=${encodeURIComponent(nodeId)}`)
    ).containers;
  const containers: ContainerRow[] = [];
  let cursor: string | null = null;
  do {
    const path: string = cursor === null ? '/containers' : `/containers?cursor=${encodeURIComponent(cursor)}`;
    const page = await client.get<{ containers: ContainerRow[]; next_cursor?: string | null }>(path);
    containers.push(...page.containers);
    cursor = page.next_cursor ?? null;
  } while (cursor !== null);
  return containers;
}

export async function findNode(client: Client, ref: string): Promise<NodeRow> {
  const nodes = await allNodes(client);
  const node = nodes.find((n) => n.id === ref || n.name === ref);
  if (!node) throw new CliError(`no node ${ref} (fleet nodes lists them)`, EXIT.notFound);
  return node;
}

program
  .command('nodes')
  .description('every node: status, CPU %, memory %, GPU %, GPU memory %, temperature °C, disk %')
  .action(async () => {
    const { client, json } = await session();
    const nodes = await allNodes(client);
    if (json) return printJson({ nodes });
    console.log(
      table(nodes, [
        'name',
        'id',
        'status',
        'cluster',
        'cpu',
        'memory',
        'gpu',
        'gpu_memory',
        'temperature',
        'disk',
        'last_seen',
      ]),
    );
  });

export interface ContainerRow {
  id: string;
  name: string;
  image: string;
  status: string;
  node_id: string;
  [k: string]: unknown;
}

interface PolicyRow {
  allow_host_paths: string[];
  allow_engine_socket: boolean;
  allow_privileged: boolean;
  allow_host_network: boolean;
  allow_host_pid: boolean;
  allow_capabilities: string[];
}

/** The node's own policy in one line (GET /api/nodes/ `policy`; null: its agent reports none). */
function policyText(p: unknown): string {
  if (!p || typeof p !== 'object') return 'not reported (the agent judges each start itself)';
  const r = p as PolicyRow;
  const yes = (b: boolean) => (b ? 'allowed' : 'refused');
  return [
    `privileged ${yes(r.allow_privileged)}`,
    `host folders ${r.allow_host_paths.length ? r.allow_host_paths.join(', ') : 'none'}`,
    `engine socket ${yes(r.allow_engine_socket)}`,
    `host network ${yes(r.allow_host_network)}`,
    `host PID ${yes(r.allow_host_pid)}`,
    `capabilities ${r.allow_capabilities.length ? r.allow_capabilities.join(', ') : 'none'}`,
  ].join('; ');
}

program
  .command('node')
  .description('one node (id or name): its metrics, labels, policy and containers')
  .argument('<node>', 'node id or name')
  .action(async (ref: string) => {
    const { client, json } = await session();
    const node = await findNode(client, ref);
    const [swarm, containers] = await Promise.all([
      client.get<{ id: string; labels?: Record<string, string> }[]>('/api/swarm/nodes'),
      allContainers(client, node.id),
    ]);
    const labels = swarm.find((s) => s.id === node.id)?.labels ?? {};
    const mine = containers;
    if (json) return printJson({ ...node, labels, containers: mine });
    console.log(details({ ...node, labels, policy: policyText(node['policy']) }));
    console.log('');
    console.log(mine.length ? table(mine, ['id', 'name', 'image', 'status', 'ports']) : 'no containers');
  });
