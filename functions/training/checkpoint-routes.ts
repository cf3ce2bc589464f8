import * as z from 'zod';
import { rawReply, reply } from '../core/http.js';
import { route, type AnyRoute, type RouteSpec } from '../core/route.js';
import { authenticateAgent } from '../nodes/auth.js';
import {
  chunkHash,
  checkpointCommitRequest,
  checkpointCommitResponse,
  checkpointRestoreResponse,
  checkpointRunRequest,
  checkpointUploadsRequest,
  checkpointUploadsResponse,
} from '../../protocol/checkpoints.js';
import {
  checkpointListing,
  commitManifest,
  deleteCheckpoint,
  getChunk,
  putChunk,
  restoreAccess,
  uploadAccess,
} from './checkpoints.js';
import { jobIdParams } from './schemas.js';

/** One stored file of a job's checkpoint. */
const checkpointListResponse = z.object({
  job_id: z.string(),
  files: z.array(
    z.object({
      name: z.string(),
      size: z.number().int(),
      updated_at: z.string(),
      attempt: z.number().int().describe('The attempt whose upload wrote this content'),
    }),
  ),
  total_bytes: z.number().int(),
  max_bytes: z.number().int().describe('TRAINING_CHECKPOINT_MAX_BYTES'),
  updated_at: z.string().nullable().describe('When the stored checkpoint was last written; null: none yet'),
  error: z
    .string()
    .nullable()
    .describe('Why the last upload was refused (over the size limit); null once one is stored again'),
});

/** GET /jobs/{job_id}/checkpoint and DELETE: the user's view of a job's stored checkpoint. */
export function checkpointRoutes(): AnyRoute[] {
  const common: Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope'> = {
    tags: ['Training jobs'],
    errorStyle: 'training',
    scope: 'user',
  };
  return [
    route({
      ...common,
      method: 'GET',
      path: '/jobs/{job_id}/checkpoint',
      summary:
        "The job's checkpoint in the artifacts store: each file with its size, time and the attempt that wrote it",
      params: jobIdParams,
      response: checkpointListResponse,
      responses: { 404: 'No such job' },
      handler: async (req, ctx) => checkpointListing(ctx, req.params.job_id),
    }),
    route({
      ...common,
      method: 'DELETE',
      path: '/jobs/{job_id}/checkpoint',
      summary:
        "Clear the job's stored checkpoint (its next run starts from nothing); not while it is running",
      params: jobIdParams,
      successStatus: 204,
      responses: { 404: 'No such job', 409: 'The job is running' },
      handler: async (req, ctx) => {
        await deleteCheckpoint(ctx, req.params.job_id);
        return reply(204);
      },
    }),
  ];
}

const agentJobParams = z.object({ job_id: z.string().min(1).max(64) });
const chunkParams = agentJobParams.extend({ instance_id: z.string().min(1).max(128), hash: chunkHash });
const runOnly = {
  403: 'The run is not the job’s attempt in flight on this node',
  404: 'No such job',
};

/** What a node's agent calls to restore and upload its run's checkpoint (agent/checkpoints.ts). */
export function checkpointAgentRoutes(): AnyRoute[] {
  const common: Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope' | 'hook'> = {
    tags: ['Agent'],
    errorStyle: 'fastapi',
    scope: 'agent',
    hook: async (req, ctx) => void (await authenticateAgent(ctx, req.headers)),
  };
  return [
    route({
      ...common,
      method: 'POST',
      path: '/agent/checkpoints/{job_id}/restore',
      summary:
        "The job's stored manifest and where to fetch each chunk (presigned URLs on S3), for the run starting on this node",
      params: agentJobParams,
      body: checkpointRunRequest,
      response: checkpointRestoreResponse,
      responses: runOnly,
      handler: async (req, ctx) => {
        const node = await authenticateAgent(ctx, req.headers);
        return restoreAccess(ctx, node.nodeId, req.params.job_id, req.body.instanceId);
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/agent/checkpoints/{job_id}/uploads',
      summary:
        'Where to upload the chunks the store lacks (presigned URLs on S3); refused past the job’s size limit',
      params: agentJobParams,
      body: checkpointUploadsRequest,
      response: checkpointUploadsResponse,
      responses: { ...runOnly, 413: 'The checkpoint is over TRAINING_CHECKPOINT_MAX_BYTES' },
      handler: async (req, ctx) => {
        const node = await authenticateAgent(ctx, req.headers);
        return uploadAccess(ctx, node.nodeId, req.params.job_id, req.body);
      },
    }),
    route({
      ...common,
      method: 'PUT',
      path: '/agent/checkpoints/{job_id}/manifest',
      summary: 'Write the manifest of an upload, once every chunk it names is stored',
      params: agentJobParams,
      body: checkpointCommitRequest,
      response: checkpointCommitResponse,
      responses: {
        ...runOnly,
        409: 'A chunk the manifest names is not stored (or not at its size)',
        413: 'The checkpoint is over TRAINING_CHECKPOINT_MAX_BYTES',
      },
      handler: async (req, ctx) => {
        const node = await authenticateAgent(ctx, req.headers);
        return commitManifest(ctx, node.nodeId, req.params.job_id, req.body);
      },
    }),
    route({
      ...common,
      method: 'PUT',
      path: '/agent/checkpoints/{job_id}/runs/{instance_id}/chunks/{hash}',
      summary:
        'Store one chunk (embedded runtime; on S3 the agent gets presigned URLs instead); its body must hash to its name',
      params: chunkParams,
      bodyType: 'binary',
      response: z.object({ hash: z.string(), size: z.number().int() }),
      responses: runOnly,
      handler: async (req, ctx) => {
        const node = await authenticateAgent(ctx, req.headers);
        return putChunk(
          ctx,
          node.nodeId,
          req.params.job_id,
          req.params.hash,
          req.params.instance_id,
          req.rawBody,
        );
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/agent/checkpoints/{job_id}/runs/{instance_id}/chunks/{hash}',
      summary: 'Fetch one chunk (embedded runtime)',
      params: chunkParams,
      produces: 'application/octet-stream',
      responses: { ...runOnly, 404: 'No such job or chunk' },
      handler: async (req, ctx) => {
        const node = await authenticateAgent(ctx, req.headers);
        const body = await getChunk(
          ctx,
          node.nodeId,
          req.params.job_id,
          req.params.hash,
          req.params.instance_id,
        );
        return rawReply(200, body, 'application/octet-stream');
      },
    }),
  ];
}
