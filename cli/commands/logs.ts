import { assertCommands, type Client } from '../client.js';
import { CliError, EXIT } from '../errors.js';
import { newLines, printJson, shellJoin } from '../output.js';
import { LogStream, resolveWsUrl } from '../stream.js';
import { enc, positiveInt, program, session, sleep } from '../program.js';
import { allContainers, findNode, type ContainerRow, type NodeRow } from './nodes.js';

// ------------------------------------------------------------------ logs and exec

/** The last lines of a container; a 202 is followed and the agent's reply read from the command. */
async function containerLogs(client: Client, id: string, tail: number, timeoutMs: number): Promise<string> {
  const answer = await client.ok<{ logs?: string; pending_commands?: string[] }>(
    'GET',
    `/api/swarm/containers/${enc(id)}/logs?tail=${tail}`,
  );
  if (answer.status === 202 && answer.body.pending_commands) {
    const [c] = await client.settle(answer.body.pending_commands, timeoutMs, 'the node to read the logs');
    assertCommands(c ? [c] : []);
    return String((c?.output as { logs?: unknown })?.logs ?? '');
  }
  return answer.body.logs ?? '';
}

export function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** Prints the lines of each source, then with follow keeps polling and prints only new ones. */
export async function followLogs(
  sources: () => Promise<{ id: string; name: string }[]>,
  read: (id: string) => Promise<string>,
  o: { follow?: boolean; tail: number; prefix: boolean; until?: () => Promise<boolean> },
): Promise<void> {
  const seen = new Map<string, string[]>();
  let stop = false;
  let last = false;
  process.once('SIGINT', () => (stop = true));
  for (;;) {
    for (const s of await sources()) {
      const lines = splitLines(await read(s.id));
      // An empty read (a container between states) must not make the next one look all new.
      if (!lines.length) continue;
      for (const l of newLines(seen.get(s.id) ?? [], lines)) console.log(o.prefix ? `${s.name} | ${l}` : l);
      seen.set(s.id, lines);
    }
    if (!o.follow || stop || last) return;
    // Once the source has ended, one more read for the lines written since the previous one.
    if (o.until && (await o.until())) {
      last = true;
      continue;
    }
    await sleep(1000);
    if (stop) return;
  }
}

/** Statuses in which a container still writes output. */
const WRITING = new Set(['pending', 'running', 'stopping']);

/**
 * `fleet logs -f`: one logs-channel WebSocket per container (the opt-in `?container=`), plus the
 * node's own log lines when no container is named. The tail each connection answers is matched
 * against what was printed, so a reconnect repeats nothing. The container list is read again every
 * few seconds: new containers are followed, ended ones get a last read over HTTP and are closed.
 * Ends on Ctrl-C, or when the one named container has ended.
 */
async function followStreams(
  client: Client,
  node: NodeRow,
  list: () => Promise<ContainerRow[]>,
  o: { container?: string; tail: number; timeoutMs: number; wsUrl?: string },
): Promise<void> {
  const target = {
    wsUrl: await resolveWsUrl(client.target.url, o.wsUrl),
    ...(client.target.apiKey ? { apiKey: client.target.apiKey } : {}),
  };
  const prefix = !o.container;
  const streams = new Map<string, { stream: LogStream; name: string }>();
  const status = new Map<string, string>();
  const ending = new Set<string>();
  let stopping = false;
  const refresh = async () => {
    const now = await list();
    // One no longer listed (removed) is not writing.
    status.clear();
    for (const c of now) status.set(c.id, c.status);
  };
  const start = (id: string, name: string, container: string | undefined) => {
    const stream = new LogStream(target, node.id, container, {
      line: (l) => console.log(prefix ? `${name} | ${l}` : l),
      note: (t) => console.error(`fleet: ${name}: ${t}`),
      alive: async () => {
        if (!container) return !stopping;
        await refresh();
        return !stopping && WRITING.has(status.get(container) ?? '');
      },
    });
    streams.set(id, { stream, name });
  };
  /** A container that ended: its last lines over HTTP (those the stream may have missed), then closed. */
  const finish = async (id: string) => {
    const s = streams.get(id);
    if (!s || ending.has(id)) return;
    ending.add(id);
    try {
      s.stream.catchUp(splitLines(await containerLogs(client, id, o.tail, o.timeoutMs)));
    } catch {
      // Removed already: what the stream showed is all there is.
    }
    s.stream.close();
  };
  const sync = async () => {
    const now = await list();
    status.clear();
    for (const c of now) {
      status.set(c.id, c.status);
      if (!streams.has(c.id) && WRITING.has(c.status)) start(c.id, c.name, c.id);
      else if (streams.has(c.id) && !WRITING.has(c.status)) await finish(c.id);
    }
    for (const id of streams.keys()) if (id !== node.id && !now.some((c) => c.id === id)) await finish(id);
  };
  if (!o.container) start(node.id, node.name, undefined);
  await sync();
  if (o.container && !streams.size) {
    // Not writing any more: its last lines, as without -f.
    const [c] = await list();
    if (c) console.log(splitLines(await containerLogs(client, c.id, o.tail, o.timeoutMs)).join('\n'));
    return;
  }
  const stopAll = () => {
    stopping = true;
    for (const s of streams.values()) s.stream.close();
  };
  process.once('SIGINT', stopAll);
  process.once('SIGTERM', stopAll);
  const poller = setInterval(() => {
    if (!stopping) void sync().catch(() => undefined);
  }, 5000);
  try {
    // A refusal (401, bad request, no stream at that URL) rejects and ends the command with its code.
    for (;;) {
      const open = [...streams.values()].map((s) => s.stream.done);
      await Promise.all(open);
      if (stopping || o.container || streams.size === open.length) break;
    }
  } catch (error) {
    stopAll();
    throw error;
  } finally {
    clearInterval(poller);
    process.off('SIGINT', stopAll);
    process.off('SIGTERM', stopAll);
  }
}

program
  .command('logs')
  .description(
    'the last lines of a node’s containers (or one with --container); -f follows them live, with the node’s own log lines',
  )
  .argument('<node>', 'node id or name')
  .option('--container <id>', 'only this container (id or name)')
  .option(
    '-f, --follow',
    'keep printing new lines (WebSocket stream) until Ctrl-C, or until the container ends',
  )
  .option('--tail <n>', 'lines to read per container', positiveInt, 100)
  .action(async (ref: string, o: { container?: string; follow?: boolean; tail: number }) => {
    const { client, json, timeoutMs, wsUrl } = await session();
    const node = await findNode(client, ref);
    const list = async () => {
      const mine = (await allContainers(client, node.id)).filter(
        (c) => c.node_id === node.id && (!o.container || c.id === o.container || c.name === o.container),
      );
      if (o.container && !mine.length)
        throw new CliError(`no container ${o.container} on ${node.name}`, EXIT.notFound);
      return mine.filter((c) => c.status !== 'removed');
    };
    if (json) {
      const out = [];
      for (const s of await list())
        out.push({ id: s.id, name: s.name, logs: await containerLogs(client, s.id, o.tail, timeoutMs) });
      return printJson({ node_id: node.id, containers: out });
    }
    if (o.follow) {
      const named = o.container ? (await list())[0]?.id : undefined;
      return followStreams(client, node, list, {
        ...(named ? { container: named } : {}),
        tail: o.tail,
        timeoutMs,
        ...(wsUrl ? { wsUrl } : {}),
      });
    }
    await followLogs(list, (id) => containerLogs(client, id, o.tail, timeoutMs), {
      tail: o.tail,
      prefix: !o.container,
    });
  });

program
  .command('exec')
  .description('run a shell command on a node through its agent (the agent needs --allow-exec; admin key)')
  .argument('<node>', 'node id or name')
  .argument('<command...>', 'the command, after --')
  .option('--exec-timeout <seconds>', 'kill it after this long (1-120)', positiveInt, 30)
  .action(async (ref: string, command: string[], o: { execTimeout: number }) => {
    const { client, json, timeoutMs } = await session();
    const node = await findNode(client, ref);
    const res = await client.act<{ stdout: string; stderr: string; exit_status: number | null }>(
      'POST',
      '/api/ssh/exec-node',
      { node_id: node.id, command: shellJoin(command), timeout: o.execTimeout },
      { text: `running on ${node.name}`, timeoutMs },
    );
    assertCommands(res.commands);
    const out = (res.commands?.[0]?.output ?? res.body) as {
      stdout?: string;
      stderr?: string;
      exit_status?: number | null;
      exitStatus?: number | null;
    };
    const code = out.exit_status ?? out.exitStatus ?? null;
    if (json)
      printJson({ node_id: node.id, stdout: out.stdout ?? '', stderr: out.stderr ?? '', exit_status: code });
    else {
      process.stdout.write(out.stdout ?? '');
      process.stderr.write(out.stderr ?? '');
    }
    // Like ssh: the remote command's exit status is ours.
    process.exitCode = code ?? EXIT.failed;
  });
