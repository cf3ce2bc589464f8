import type { AppContext } from '../core/context.js';
import { taskQueueKeys, fleetKeys, keys, trainingKeys } from '../core/keys.js';
import type { TaskItem } from '../cluster/tasks.js';
import { listServices, nodeInstances } from '../orchestrator/model.js';
import type { ChatModel, ChatReply } from '../ports/chat-model.js';
import type { JobItem, RunItem } from '../training/model.js';
import type { CommandItem } from '../nodes/commands.js';
import { fleetCounts, isOnline, nodeLabels, withState, type NodeItem } from '../nodes/nodes.js';
import { nodeView } from '../nodes/routes.js';

/**
 * The AI assistant's domain: it grounds a question in the fleet's recorded state (a node's last
 * heartbeat, its containers, recent failures on it; or a fleet summary), asks the model for
 * `{response, suggestions[]}`, and reads the answer robustly. Secrets never reach the prompt:
 * only chosen fields go in (no env, no command specs, no token hashes), and free text is redacted.
 */

export const SYSTEM_PROMPT = [
  'You are the operations assistant of a GPU fleet control plane (Jetson boards, GPU servers, cloud GPUs).',
  'Each request carries the fleet state the control plane recorded, as JSON, then the operator’s question.',
  'Ground every statement in that state; say so when the state does not show what would be needed.',
  'Answer ONLY with one JSON object, no prose around it and no code fences:',
  '{"response": "<your answer, plain text>", "suggestions": ["<short concrete action>", ...]}',
  'Give at most 5 suggestions, most useful first; an empty list when none apply.',
].join('\n');

const MAX_FAILURES = 10;
const MAX_TEXT = 500;
const MAX_NODES_IN_SUMMARY = 50;
const REDACTED = '[redacted]';

/** Credentials by shape: join tokens, agent tokens, bearer headers, key=value secrets, AWS key ids. */
const SECRET_PATTERNS: [RegExp, string][] = [
  [/FLEETJT-1-[A-Za-z0-9_-]+/g, REDACTED],
  [/\bBearer\s+\S+/gi, `Bearer ${REDACTED}`],
  [/\b[\w-]+\.[A-Za-z0-9_-]{43}\b/g, REDACTED],
  [
    /\b((?:[\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|credential)s?))(["']?\s*[=:]\s*["']?)[^\s"',;&]+/gi,
    `$1$2${REDACTED}`,
  ],
  [/\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g, REDACTED],
];

/** Removes credentials from text bound for the model; `known` are exact secret values (the API key). */
export function redact(text: string, known: string[] = []): string {
  let out = text;
  for (const value of known) if (value.length >= 8) out = out.split(value).join(REDACTED);
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

const clip = (s: string | undefined | null) =>
  s === undefined || s === null ? undefined : s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s;

/** A node's recorded state, the fields a diagnosis needs and nothing else. */
export async function nodeContext(ctx: AppContext, node: NodeItem) {
  const now = ctx.now();
  const [instances, failures] = await Promise.all([
    nodeInstances(ctx, node.nodeId),
    recentFailures(ctx, node.nodeId),
  ]);
  const m = node.metrics;
  const known = new Set(instances.map((i) => i.instanceId));
  return {
    node: {
      id: node.nodeId,
      name: node.nodeName,
      hostname: node.hostname,
      status: isOnline(node, ctx, now) ? 'online' : 'offline',
      last_heartbeat: node.lastHeartbeat ?? null,
      arch: node.arch,
      os: node.os,
      cpu_count: node.cpuCount,
      memory_mb: node.memoryMb,
      disk_gb: node.diskGb,
      cluster: node.cluster ?? null,
      labels: nodeLabels(node),
      agent_version: node.agentVersion,
      engine: node.engine ?? null,
      jetson: node.jetson ?? null,
      loaded_models: node.loadedModels ?? [],
    },
    metrics: m
      ? {
          cpu_percent: m.cpuPercent,
          memory_used_mb: m.memoryUsedMb,
          memory_total_mb: m.memoryTotalMb,
          disk_used_gb: m.diskUsedGb,
          disk_total_gb: m.diskTotalGb,
          gpus: m.gpus.map((g) => ({
            index: g.index,
            name: g.name,
            utilization_percent: g.utilizationGpu,
            memory_used_mib: g.memoryUsedMiB,
            memory_total_mib: g.memoryTotalMiB,
            temperature_c: g.temperatureC,
            power_draw_w: g.powerDrawW,
            power_limit_w: g.powerLimitW,
          })),
          tegrastats: m.tegrastats ?? null,
        }
      : null,
    summary: nodeView(node, ctx, now),
    containers: [
      ...instances.map((i) => ({
        id: i.instanceId,
        name: i.name,
        image: i.imageId,
        status: i.status,
        engine_state: node.containerStats?.[i.instanceId]?.state ?? null,
        exit_code: i.exitCode ?? null,
        last_error: clip(i.lastError) ?? null,
        cpu_percent: node.containerStats?.[i.instanceId]?.cpuPercent ?? null,
        memory_percent: node.containerStats?.[i.instanceId]?.memoryPercent ?? null,
        created_at: i.createdAt,
      })),
      // Training runs and model servers the heartbeat reports beside the services' copies.
      ...Object.entries(node.containerStats ?? {})
        .filter(([id]) => !known.has(id))
        .map(([id, c]) => ({
          id,
          kind: c.kind,
          engine_state: c.state,
          cpu_percent: c.cpuPercent,
          memory_percent: c.memoryPercent,
        })),
    ],
    recent_failures: failures,
  };
}

/** Failed commands, inference tasks and training runs on the node, newest first. */
async function recentFailures(ctx: AppContext, nodeId: string) {
  const [commands, tasks, runs] = await Promise.all([
    ctx.store.query<CommandItem>(fleetKeys.nodeCommandsPk(nodeId), {
      index: 'gsi1',
      ascending: false,
      limit: 50,
    }),
    ctx.store.query<TaskItem>(taskQueueKeys.tasksPk, { index: 'gsi2', ascending: false, limit: 200 }),
    recentRuns(ctx),
  ]);
  const failed = [
    ...commands.items
      .filter((c) => c.status === 'failed')
      .map((c) => ({
        kind: 'command',
        id: c.commandId,
        type: c.type,
        container: c.instanceId ?? null,
        error: clip(c.error) ?? null,
        at: c.completedAt ?? c.issuedAt,
      })),
    ...tasks.items
      .filter((t) => t.nodeId === nodeId && t.status === 'failed')
      .map((t) => ({
        kind: 'task',
        id: t.taskId,
        type: t.taskType,
        model: t.model,
        error: clip(t.error) ?? null,
        at: t.completedAt ?? t.createdAt,
      })),
    ...runs
      .filter((r) => r.nodeId === nodeId && r.status === 'failed')
      .map((r) => ({
        kind: 'training_run',
        id: r.instanceId,
        job_id: r.jobId,
        exit_code: r.exitCode ?? null,
        error: clip(r.error) ?? null,
        at: r.endedAt ?? r.createdAt,
      })),
  ];
  return failed.sort((a, b) => (a.at < b.at ? 1 : -1)).slice(0, MAX_FAILURES);
}

/** The last runs of the most recent jobs (runs are kept per job, not per node). */
async function recentRuns(ctx: AppContext): Promise<RunItem[]> {
  const jobs = await ctx.store.query<JobItem>(trainingKeys.jobsPk, {
    index: 'gsi1',
    ascending: false,
    limit: 25,
  });
  const pages = await Promise.all(
    jobs.items.map((j) =>
      ctx.store.query<RunItem>(keys.job(j.jobId).pk, {
        prefix: trainingKeys.runPrefix,
        ascending: false,
        limit: 5,
      }),
    ),
  );
  return pages.flatMap((p) => p.items);
}

/** The whole fleet in brief, for questions not about one node. */
export async function fleetContext(ctx: AppContext) {
  const now = ctx.now();
  // The fleet counted and its first nodes by name: not every node.
  const [counts, firstNodes, services, tasks] = await Promise.all([
    fleetCounts(ctx),
    ctx.store.query<NodeItem>(fleetKeys.nodesPk, { index: 'gsi1', limit: MAX_NODES_IN_SUMMARY }),
    listServices(ctx),
    ctx.store.query<TaskItem>(taskQueueKeys.tasksPk, { index: 'gsi2', ascending: false, limit: 100 }),
  ]);
  const nodes = await Promise.all(firstNodes.items.map((m) => withState(ctx, m)));
  return {
    fleet: {
      nodes_total: counts.nodes,
      nodes_online: counts.online,
      nodes_offline: counts.nodes - counts.online,
    },
    nodes: nodes.map((n) => ({
      ...nodeView(n, ctx, now),
      gpus: n.metrics?.gpus.map((g) => ({
        index: g.index,
        name: g.name,
        utilization_percent: g.utilizationGpu,
        temperature_c: g.temperatureC,
        power_draw_w: g.powerDrawW,
      })),
      containers: Object.values(n.containerStats ?? {}).reduce<Record<string, number>>((acc, c) => {
        acc[c.state] = (acc[c.state] ?? 0) + 1;
        return acc;
      }, {}),
    })),
    services: services
      .filter((s) => s.desiredCount > 0)
      .map((s) => ({ name: s.serviceName ?? s.imageId, image: s.imageId, desired: s.desiredCount })),
    recent_task_failures: tasks.items
      .filter((t) => t.status === 'failed')
      .slice(0, MAX_FAILURES)
      .map((t) => ({
        id: t.taskId,
        model: t.model,
        node: t.nodeId ?? null,
        error: clip(t.error) ?? null,
        at: t.completedAt ?? t.createdAt,
      })),
  };
}

export interface AssistantAnswer {
  response: string;
  suggestions: string[];
}

/** Builds the user turn: the state as JSON, then the request, everything redacted. */
export function userTurn(state: unknown, request: string, known: string[]): string {
  return redact(
    `Fleet state recorded by the control plane (JSON):\n${JSON.stringify(state, null, 1)}\n\n${request}`,
    known,
  );
}

/**
 * The model's answer as `{response, suggestions}`: the JSON object it was asked for (bare, fenced
 * or inside prose); otherwise its whole text as the response and no suggestions.
 */
export function parseAnswer(text: string): AssistantAnswer {
  const candidates: string[] = [text.trim()];
  const fenced = /```(?:json)?\s*([\s\S]*?)```/i.exec(text);
  if (fenced?.[1]) candidates.push(fenced[1].trim());
  const first = text.indexOf('{');
  const last = text.lastIndexOf('}');
  if (first >= 0 && last > first) candidates.push(text.slice(first, last + 1));
  for (const c of candidates) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(c);
    } catch {
      continue;
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) continue;
    const o = parsed as { response?: unknown; suggestions?: unknown };
    if (typeof o.response !== 'string' || !o.response.trim()) continue;
    const suggestions = Array.isArray(o.suggestions)
      ? o.suggestions
          .filter((s): s is string => typeof s === 'string' && s.trim() !== '')
          .map((s) => s.trim())
          .slice(0, 10)
      : [];
    return { response: o.response.trim(), suggestions };
  }
  return { response: text.trim(), suggestions: [] };
}

/** One question to the model over the given state. */
export async function ask(
  ctx: AppContext,
  model: ChatModel,
  state: unknown,
  request: string,
): Promise<{ answer: AssistantAnswer; reply: ChatReply }> {
  const apiKey = await ctx.secrets.get('api-key').catch(() => undefined);
  const reply = await model.converse({
    system: SYSTEM_PROMPT,
    messages: [{ role: 'user', text: userTurn(state, request, apiKey ? [apiKey] : []) }],
    maxTokens: ctx.config.AI_MAX_TOKENS,
    temperature: 0.2,
  });
  return { answer: parseAnswer(reply.text), reply };
}
