import * as z from 'zod';
import type { AppContext } from '../core/context.js';
import { reply } from '../core/http.js';
import { route, type AnyRoute, type RouteSpec } from '../core/route.js';
import {
  INSTALL_NAME,
  INSTALL_STEPS,
  installCredential,
  installStepsRequest,
} from '../../protocol/install.js';
import { authenticateAgent } from '../nodes/auth.js';
import { clearFinished, forgetHostKey, queueInstall, retryFailed, retryJob } from './install-queue.js';
import { installCredentialFor, recordInstallSteps } from './install-queue-agent.js';
import { autoJoinAll, joinRemote } from './install-queue-join.js';
import { jobDetail, jobView, queueView } from './install-queue-view.js';

/** An IPv4 address or a host name, as SSH takes it. */
const host = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/, 'an IPv4 address or a host name');
const cluster = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, ".", "_" and "-"');
const sshPort = z.number().int().min(1).max(65535).default(22);
const nodeRef = z.string().min(1).max(128);

const step = z.object({
  name: z.enum(INSTALL_STEPS),
  status: z.enum(['running', 'ok', 'failed']),
  detail: z.string(),
  at: z.string(),
});
export const installJob = z.object({
  job_id: z.string(),
  host: z.string(),
  port: z.number().int(),
  cluster: z.string().nullable(),
  node_name: z.string().nullable(),
  credential_id: z.string().nullable(),
  /** The node whose agent installs. */
  installer_node_id: z.string().nullable(),
  state: z.enum(['queued', 'connecting', 'installing', 'joined', 'failed']),
  /** The step running, or the one that failed. */
  step: z.enum(INSTALL_STEPS).nullable(),
  error: z.string().nullable(),
  steps: z.array(step),
  facts: z
    .object({
      arch: z.string(),
      os: z.string(),
      hostname: z.string(),
      engine: z.string().nullable(),
      sudo: z.string(),
    })
    .nullable(),
  joined_node_id: z.string().nullable(),
  joined_node_name: z.string().nullable(),
  attempts: z.number().int(),
  created_at: z.string(),
  updated_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
});

const common: Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope' | 'role'> = {
  tags: ['Install Queue'],
  errorStyle: 'fastapi',
  scope: 'user',
  role: 'admin',
};

const jobIdParams = z.object({ job_id: z.string().min(1).max(64) });

/** What an install asks beside its host: the same in the Install Queue and in Network join. */
const installFields = {
  credential_id: z.string().min(1).max(128),
  cluster: cluster.optional(),
  /** SSH port; default 22. */
  port: sshPort,
  /** The new node's name; default: the host's hostname. */
  name: z.string().regex(INSTALL_NAME).optional(),
  /** The node whose agent installs (id or name); default: an online one with an address in the host's /24 (by address), else an online one. */
  node_id: nodeRef.optional(),
};
const queueResponses = {
  404: 'Unknown credential or node',
  409: 'An install of that host is in progress, or no node is online',
};

/** Queues one install and answers its job (201). */
const queued = async (ctx: AppContext, targetHost: string, b: InstallFields) =>
  reply(
    201,
    jobView(
      await queueInstall(ctx, {
        host: targetHost,
        port: b.port,
        cluster: b.cluster,
        nodeName: b.name,
        credentialId: b.credential_id,
        nodeRef: b.node_id,
      }),
    ),
  );
type InstallFields = z.output<z.ZodObject<typeof installFields>>;

/** The Install Queue API, the Network API's join and auto-join, and the Swarm API's join-remote. */
export function installRoutes(): AnyRoute[] {
  return [
    route({
      ...common,
      method: 'POST',
      path: '/api/install-queue/queue',
      summary:
        'Queue an install of the agent on a host over SSH with a vault credential; a node’s agent on its network runs it (INSTALL_CONCURRENCY_PER_NODE at a time)',
      body: z.object({ host, ...installFields }).strict(),
      response: installJob,
      successStatus: 201,
      responses: queueResponses,
      handler: async (req, ctx) => queued(ctx, req.body.host, req.body),
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/install-queue/queue',
      summary: 'Every install job (oldest first) with its state and steps, and the count per state',
      response: z.object({
        jobs: z.array(installJob),
        total: z.number().int(),
        counts: z.record(z.string(), z.number().int()),
        concurrency_per_node: z.number().int(),
      }),
      handler: async (_req, ctx) => queueView(ctx),
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/install-queue/queue/{job_id}',
      summary:
        'One install job: queued, connecting, installing, joined, or failed with the step and the reason',
      params: jobIdParams,
      response: installJob,
      responses: { 404: 'Unknown job' },
      handler: async (req, ctx) => jobDetail(ctx, req.params.job_id),
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/install-queue/queue/{job_id}/retry',
      summary: 'Queue a failed job again',
      params: jobIdParams,
      response: installJob,
      responses: { 404: 'Unknown job', 409: 'The job is not failed, or its inline credential is gone' },
      handler: async (req, ctx) => jobView(await retryJob(ctx, req.params.job_id)),
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/install-queue/queue/retry-failed',
      summary: 'Queue every failed job again; those that cannot be retried are listed with the reason',
      response: z.object({
        retried: z.array(installJob),
        skipped: z.array(z.object({ job_id: z.string(), host: z.string(), reason: z.string() })),
      }),
      handler: async (_req, ctx) => {
        const { retried, skipped } = await retryFailed(ctx);
        return { retried: retried.map(jobView), skipped };
      },
    }),
    route({
      ...common,
      method: 'DELETE',
      path: '/api/install-queue/queue',
      summary: 'Clear the finished jobs (joined and failed); queued and running ones stay',
      response: z.object({
        status: z.literal('cleared'),
        cleared: z.number().int(),
        job_ids: z.array(z.string()),
        remaining: z.number().int(),
      }),
      handler: async (_req, ctx) => clearFinished(ctx),
    }),
    route({
      ...common,
      method: 'DELETE',
      path: '/api/install-queue/host-keys/{host}',
      summary:
        'Forget the SSH host key trusted on first use for a host, so the next install accepts the key it presents (after a reinstall of the host)',
      params: z.object({ host }),
      query: z.object({ port: z.coerce.number().int().min(1).max(65535).default(22) }),
      response: z.object({ status: z.literal('deleted'), host: z.string(), port: z.number().int() }),
      responses: { 404: 'No key stored for that host' },
      handler: async (req, ctx) => forgetHostKey(ctx, req.params.host, req.query.port),
    }),
    route({
      ...common,
      tags: ['Network'],
      method: 'POST',
      path: '/api/network/join',
      summary:
        'Join a host to the fleet: queues an install over SSH with a vault credential (the Install Queue’s job)',
      body: z.object({ ip: host, ...installFields }).strict(),
      response: installJob,
      successStatus: 201,
      responses: queueResponses,
      handler: async (req, ctx) => queued(ctx, req.body.ip, req.body),
    }),
    route({
      ...common,
      tags: ['Network'],
      method: 'POST',
      path: '/api/network/auto-join-all',
      summary:
        'Queue an install for every host of the last scan that looks like a Jetson or a GPU server, is not in the fleet and has SSH open; the others are listed with the reason',
      body: z
        .object({
          /** Default: the AUTO_JOIN_CREDENTIAL setting. */
          credential_id: z.string().min(1).max(128).optional(),
          cluster: cluster.optional(),
          node_id: nodeRef.optional(),
        })
        .strict()
        .default({}),
      response: z.object({
        subnet: z.string(),
        queued: z.array(z.object({ ip: z.string(), job_id: z.string(), state: z.string() })),
        skipped: z.array(z.object({ ip: z.string(), reason: z.string() })),
      }),
      responses: { 400: 'No credential given or configured', 404: 'Unknown credential', 409: 'No scan yet' },
      handler: async (req, ctx) => autoJoinAll(ctx, req.body ?? {}),
    }),
    route({
      ...common,
      tags: ['Swarm'],
      method: 'POST',
      path: '/api/swarm/join-remote',
      summary:
        'Install the agent on a host over SSH with a login given inline (kept as a SecureString for the job’s life, then deleted); answers once the node is registered, or 202 with the job past COMMAND_WAIT_MS',
      body: z
        .object({
          node_ip: host,
          username: z.string().min(1).max(256),
          password: z.string().min(1).max(4096),
          cluster: cluster.optional(),
          node_id: nodeRef.optional(),
        })
        .strict(),
      response: z.object({
        status: z.literal('success'),
        message: z.string(),
        node_id: z.string(),
        cluster: z.string().nullable(),
        job_id: z.string(),
      }),
      responses: {
        202: {
          description: 'Still installing; follow GET /api/install-queue/queue/{job_id}',
          schema: z.object({
            status: z.literal('installing'),
            message: z.string(),
            job_id: z.string(),
            state: z.string(),
          }),
        },
        401: 'The host refused the login',
        404: 'The installing node named is unknown',
        409: 'An install of that host is in progress, or no node is online',
        502: 'The install failed at a step (the detail names it)',
        504: 'The host could not be reached over SSH',
      },
      handler: async (req, ctx) => joinRemote(ctx, req.body),
    }),
  ];
}

const agentCommon: Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope' | 'hook'> = {
  tags: ['Agent'],
  errorStyle: 'fastapi',
  scope: 'agent',
  hook: async (req, ctx) => void (await authenticateAgent(ctx, req.headers)),
};

const commandParams = z.object({ commandId: z.string().min(1).max(64) });

/** The installing agent's side (agent routes group): its login for a running install, and progress. */
export function installAgentRoutes(): AnyRoute[] {
  return [
    route({
      ...agentCommon,
      method: 'POST',
      path: '/agent/install/{commandId}/credential',
      summary:
        'The SSH login and a one-use join token for a host.install this node is running; nothing for any other node or command',
      params: commandParams,
      response: installCredential,
      responses: { 404: 'No such install running on this node' },
      handler: async (req, ctx) => {
        const node = await authenticateAgent(ctx, req.headers);
        return reply(200, await installCredentialFor(ctx, node, req.params.commandId), {
          'cache-control': 'no-store',
        });
      },
    }),
    route({
      ...agentCommon,
      method: 'POST',
      path: '/agent/install/{commandId}/steps',
      summary: 'The steps of a running host.install so far',
      params: commandParams,
      body: installStepsRequest,
      response: z.object({ ok: z.literal(true) }),
      responses: { 404: 'No such install running on this node' },
      handler: async (req, ctx) => {
        const node = await authenticateAgent(ctx, req.headers);
        await recordInstallSteps(ctx, node, req.params.commandId, req.body.steps);
        return { ok: true as const };
      },
    }),
  ];
}
