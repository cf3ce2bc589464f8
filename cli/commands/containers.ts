import * as z from 'zod';
import { cpuLimit, imageRef, memoryLimit } from '../../functions/orchestrator/resources.js';
import { assertCommands, type Client } from '../client.js';
import { CliError, EXIT } from '../errors.js';
import { printJson, table } from '../output.js';
import { checked, collect, enc, keyValues, program, session } from '../program.js';
import { allContainers, findNode, type ContainerRow } from './nodes.js';

// ------------------------------------------------------------------ containers

/** Every copy of an image, page after page (a global service has one on each eligible node). */
async function imageCopies(client: Client, image: string): Promise<ContainerRow[]> {
  const copies: ContainerRow[] = [];
  let cursor: string | null = null;
  do {
    const path: string = `/containers/${enc(image)}/instances${cursor === null ? '' : `?cursor=${encodeURIComponent(cursor)}`}`;
    const page = await client.get<{ instances: ContainerRow[]; next_cursor?: string | null }>(path);
    copies.push(...page.instances);
    cursor = page.next_cursor ?? null;
  } while (cursor !== null);
  return copies;
}

program
  .command('run')
  .description('start containers of an image on the fleet (the control plane picks nodes)')
  .argument('<image>', 'image reference, e.g. nginx:alpine', checked(imageRef, 'image'))
  .option(
    '--count <n>',
    'how many more copies',
    checked(z.coerce.number().int().min(1).max(100), '--count'),
    1,
  )
  .option('--gpus <n>', 'GPUs per copy', checked(z.coerce.number().int().min(0).max(16), '--gpus'))
  .option('--cpu <cores>', 'CPU limit in cores, e.g. 0.5', checked(cpuLimit, '--cpu'))
  .option('--memory <size>', 'memory limit, e.g. 512m or 1g', checked(memoryLimit, '--memory'))
  .option('--port <port>', 'container port to publish (repeatable)', collect)
  .option('--env <KEY=VALUE>', 'environment variable (repeatable)', collect)
  .option('--node <node>', 'run on this node only (id or name)')
  .argument('[command...]', 'command to run instead of the image’s (after --)')
  .action(
    async (
      image: string,
      command: string[],
      o: {
        count: number;
        gpus?: number;
        cpu?: string;
        memory?: string;
        port?: string[];
        env?: string[];
        node?: string;
      },
    ) => {
      const { client, json, timeoutMs } = await session();
      const ports = (o.port ?? []).map((p) => {
        const n = Number(p);
        if (!Number.isInteger(n) || n < 1 || n > 65535)
          throw new CliError(`--port ${p}: 1 to 65535`, EXIT.usage);
        return n;
      });
      const resources = {
        ...(o.cpu ? { cpu_limit: o.cpu } : {}),
        ...(o.memory ? { memory_limit: o.memory } : {}),
        ...(o.gpus !== undefined ? { gpus: o.gpus } : {}),
      };
      const body = {
        count: o.count,
        ...(Object.keys(resources).length ? { resources } : {}),
        ...(ports.length ? { ports } : {}),
        ...(o.env ? { env: keyValues(o.env, '--env') } : {}),
        ...(command.length ? { command } : {}),
        ...(o.node ? { node_id: o.node } : {}),
      };
      const res = await client.act<{ started?: string[] }>('POST', `/containers/${enc(image)}/start`, body, {
        text: `starting ${o.count} × ${image}`,
        timeoutMs,
      });
      assertCommands(res.commands);
      const instances = await imageCopies(client, image);
      // A settled start names its copies; after a 202 the image's live copies are shown.
      const started = res.body?.started;
      const rows = instances.filter((i) =>
        started ? started.includes(i.id) : i.status === 'running' || i.status === 'pending',
      );
      if (json) return printJson({ image, started: rows });
      console.log(table(rows, ['id', 'status', 'node_id', 'ports']));
    },
  );

program
  .command('ps')
  .description('managed containers, fleet-wide')
  .option('--node <node>', 'only this node’s (id or name)')
  .option('--image <image>', 'only this image’s')
  .action(async (o: { node?: string; image?: string }) => {
    const { client, json } = await session();
    const nodeId = o.node ? (await findNode(client, o.node)).id : undefined;
    const rows = (await allContainers(client, nodeId)).filter(
      (c) => (!nodeId || c.node_id === nodeId) && (!o.image || c.image === o.image),
    );
    if (json) return printJson({ containers: rows, total: rows.length });
    console.log(table(rows, ['id', 'name', 'image', 'status', 'node_id', 'ports', 'created_at']));
  });

async function findContainer(client: Client, ref: string): Promise<ContainerRow> {
  const c = (await allContainers(client)).find((x) => x.id === ref || x.name === ref);
  if (!c) throw new CliError(`no container ${ref} (fleet ps lists them)`, EXIT.notFound);
  return c;
}

program
  .command('stop')
  .description('stop containers (one copy fewer wanted each), or every copy of an image with --image')
  .argument('[containers...]', 'container ids or names')
  .option('--image <image>', 'stop every copy of this image (its desired count becomes 0)')
  .action(async (refs: string[], o: { image?: string }) => {
    const { client, json, timeoutMs } = await session();
    if (!refs.length && !o.image) throw new CliError('name containers to stop, or --image', EXIT.usage);
    const targets = o.image
      ? (await imageCopies(client, o.image)).filter((c) => c.status === 'running' || c.status === 'pending')
      : await Promise.all(refs.map((r) => findContainer(client, r)));
    const out: { id: string; name: string; stopped: boolean }[] = [];
    for (const c of targets) {
      const res = await client.act<{ stopped?: boolean }>(
        'POST',
        `/containers/${enc(o.image ?? c.image)}/stop`,
        { instanceId: c.id },
        { text: `stopping ${c.name}`, timeoutMs },
      );
      assertCommands(res.commands);
      out.push({ id: c.id, name: c.name, stopped: res.body?.stopped ?? true });
    }
    if (json) return printJson({ stopped: out });
    console.log(out.length ? table(out, ['id', 'name', 'stopped']) : 'nothing to stop');
  });

interface ServiceRow {
  id: string;
  name?: string | null;
  image: string;
  replicas?: number;
  [k: string]: unknown;
}

program
  .command('scale')
  .description('set the number of copies of a service (its id, name or image)')
  .argument('<service>', 'service id, name or image')
  .argument('<replicas>', 'copies wanted', checked(z.coerce.number().int().min(0).max(100), 'replicas'))
  .action(async (ref: string, replicas: number) => {
    const { client, json, timeoutMs } = await session();
    const services = await client.get<ServiceRow[]>('/api/swarm/services');
    const s = services.find((x) => x.id === ref || x.name === ref || x.image === ref);
    if (!s) throw new CliError(`no service ${ref} (GET /api/swarm/services lists them)`, EXIT.notFound);
    const res = await client.act<ServiceRow>(
      'POST',
      `/api/swarm/services/${enc(s.id)}/scale`,
      { replicas },
      { text: `scaling ${s.name ?? s.image} to ${replicas}`, timeoutMs },
    );
    assertCommands(res.commands);
    const now = (await client.get<ServiceRow[]>('/api/swarm/services')).find((x) => x.id === s.id) ?? {
      ...s,
      replicas,
    };
    if (json) return printJson(now);
    console.log(table([now], ['id', 'name', 'image', 'replicas', 'running']));
  });
