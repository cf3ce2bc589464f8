import * as z from 'zod';
import { route, type AnyRoute, type RouteSpec } from '../../core/route.js';
import { maintenanceStatus, runMaintenance, setMaintenanceEnabled } from './maintenance.js';
import { diskAudit } from './disk-audit.js';
import { quickFix } from './fixes.js';
import { currentProblems, FIX_TYPES, problemView } from './problems.js';
import { pending202, pendingCommandsBody } from '../../core/responses.js';
import { nextCursorField, nodePageQuery } from '../../nodes/nodes.js';

const common: Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope'> = {
  tags: ['Maintenance'],
  errorStyle: 'fastapi',
  scope: 'user',
};

const statusOut = z.object({
  enabled: z.boolean(),
  running: z.boolean(),
  last_run: z.string().nullable(),
  next_run: z.string().nullable(),
  problems_count: z.number().int(),
});

const problemOut = z.object({
  id: z.string(),
  node_id: z.string(),
  type: z.enum(['node_offline', 'disk_space', 'high_memory', 'gpu_temperature', 'container_exited']),
  severity: z.enum(['warning', 'critical']),
  message: z.string(),
  detected_at: z.string(),
  auto_fixable: z.boolean(),
});

const fixType = z.enum(FIX_TYPES);
/** A disk audit of a page of the fleet (no node_id) answers where the next page starts. */
const pageCursor = nextCursorField.optional().describe('Without node_id: for the next page; null on the last');
/** One fix's outcome: its own fields (removed containers, replacements) as the fix type has them. */
const fixOut = z.looseObject({
  node_id: z.string(),
  fix_type: fixType,
  status: z.enum(['completed', 'partial', 'pending', 'failed']),
  error: z.string().optional(),
  pending_commands: z.array(z.string()).optional(),
});
const bytes = z.number().nullable();
const auditOut = z.object({
  node_id: z.string(),
  name: z.string(),
  command_id: z.string(),
  status: z.enum(['pending', 'completed', 'failed']),
  error: z.string().optional(),
  filesystems: z
    .array(
      z.object({
        role: z.string(),
        path: z.string().nullable(),
        total_bytes: bytes,
        used_bytes: bytes,
        free_bytes: bytes,
        used_percent: bytes,
        error: z.string().optional(),
      }),
    )
    .optional(),
  engine: z.looseObject({ name: z.string() }).nullish(),
  engine_error: z.string().optional(),
});

const waits = {
  202: pending202(
    'The agents have not answered within COMMAND_WAIT_MS: pending command ids (GET /commands/{command_id})',
  ),
};

/** Fleet Commander's Maintenance API (functions/commander/maintenance/maintenance.ts). */
export function maintenanceRoutes(): AnyRoute[] {
  return [
    route({
      ...common,
      method: 'GET',
      path: '/api/maintenance/status',
      summary:
        'Whether the daily run (06:00 UTC) is on, whether one runs now, the last and next run, open problems',
      response: statusOut,
      handler: async (_req, ctx) => maintenanceStatus(ctx),
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/maintenance/problems',
      summary:
        'Problems detected now from the nodes’ records: offline, disk ≥ 80 % (≥ 90 % critical), memory ≥ 90 %, GPU ≥ 85 °C, managed containers down',
      response: z.object({ problems: z.array(problemOut) }),
      handler: async (_req, ctx) => ({ problems: (await currentProblems(ctx)).problems.map(problemView) }),
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/maintenance/start',
      role: 'admin',
      summary: 'Turn the daily maintenance run on',
      response: statusOut,
      handler: async (_req, ctx) => setMaintenanceEnabled(ctx, true),
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/maintenance/stop',
      role: 'admin',
      summary: 'Turn the daily maintenance run off (a run in progress finishes)',
      response: statusOut,
      handler: async (_req, ctx) => setMaintenanceEnabled(ctx, false),
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/maintenance/run-now',
      summary:
        'Detect problems and apply the automatic fixes now, waiting for the agents up to COMMAND_WAIT_MS',
      response: z.object({
        run_id: z.string(),
        trigger: z.string(),
        started_at: z.string(),
        finished_at: z.string(),
        problems: z.array(problemOut),
        fixes: z.array(fixOut),
      }),
      responses: { 409: 'A maintenance run is already in progress' },
      handler: async (_req, ctx) => runMaintenance(ctx, 'manual'),
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/maintenance/quick-fix',
      summary:
        'One fix on one node: docker_cleanup (stopped fleet containers and dangling images) or restart_exited (replace the orchestrator’s exited copies)',
      body: z.object({ node_id: z.string().min(1), fix_type: fixType }),
      response: fixOut,
      responses: {
        ...waits,
        404: 'Unknown node',
        409: 'Node offline, or no node can take the replacements',
        502: 'The agent could not apply the fix, or answered an unreadable result',
      },
      handler: async (req, ctx) => quickFix(ctx, req.body.node_id, req.body.fix_type),
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/maintenance/disk/audit',
      summary:
        'Filesystem usage of the engine root and the agent state folder, and the engine’s own disk usage, of one node or the online nodes of a page of the fleet (by name)',
      body: z
        .object({
          node_id: z.string().min(1).optional(),
          limit: nodePageQuery.limit
            .optional()
            .describe('Without node_id: nodes a page, by name (default 1,000: a small fleet in one page)'),
          cursor: nodePageQuery.cursor,
        })
        .optional(),
      response: z.object({ nodes: z.array(auditOut), next_cursor: pageCursor }),
      responses: {
        ...waits,
        202: pending202(
          'Some agents have not answered within COMMAND_WAIT_MS: their nodes show status pending',
          pendingCommandsBody.extend({ nodes: z.array(auditOut), next_cursor: pageCursor }),
        ),
        400: 'Invalid pagination cursor',
        404: 'Unknown node',
        409: 'Node offline',
      },
      handler: async (req, ctx) => diskAudit(ctx, req.body ?? {}),
    }),
  ];
}
