import * as z from 'zod';
import { boolQuery } from '../core/query.js';
import { route, type AnyRoute, type RouteSpec } from '../core/route.js';
import { CidrError, NETWORK_SCAN, parseCidr, type Cidr } from '../../protocol/network.js';
import { scanStatus, scanSubnet } from './network.js';

const subnet = z
  .string()
  .default('192.168.1.0/24')
  .transform((text, ctx): Cidr => {
    try {
      return parseCidr(text);
    } catch (error) {
      ctx.addIssue({
        code: 'custom',
        message: error instanceof CidrError ? error.message : 'invalid subnet',
      });
      return z.NEVER;
    }
  });

/** `22,8080`: sorted, repeats dropped. */
const ports = z
  .string()
  .regex(/^\d{1,5}(,\d{1,5})*$/, 'comma-separated TCP ports, e.g. 22,8080')
  .default(NETWORK_SCAN.defaultPorts.join(','))
  .transform((text) => [...new Set(text.split(',').map(Number))].sort((a, b) => a - b))
  .pipe(
    z
      .array(z.number().int().min(1, 'ports are 1 to 65535').max(65535, 'ports are 1 to 65535'))
      .max(NETWORK_SCAN.maxPorts, `at most ${NETWORK_SCAN.maxPorts} ports`),
  );

const common: Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope'> = {
  tags: ['Network'],
  errorStyle: 'fastapi',
  scope: 'user',
};

const device = z.object({
  ip: z.string(),
  hostname: z.string().nullable(),
  mac: z.string().nullable(),
  vendor: z.string().nullable(),
  is_jetson: z.boolean(),
  in_swarm: z.boolean(),
  ports: z.array(z.number().int()),
});

/** The Network API's scans (join and auto-join: functions/commander/install-routes.ts). */
export function networkRoutes(): AnyRoute[] {
  return [
    route({
      ...common,
      method: 'GET',
      path: '/api/network/scan',
      summary:
        'Devices of an IPv4 subnet (/22 at most), probed by a node’s agent on TCP 22, 80, 443, 5000, 8080, 8188, 8765; the stored scan while younger than NETWORK_SCAN_CACHE_SECONDS unless refresh=true',
      query: z.object({
        subnet,
        refresh: boolQuery.default(false),
        /** TCP ports probed (comma-separated); default 22,80,443,5000,8080,8188,8765. */
        ports,
        /** The node whose agent scans (id or name); default: an online node with an address in the subnet (by address), else an online one. */
        node_id: z.string().min(1).optional(),
      }),
      response: z.object({ devices: z.array(device), scan_time: z.string() }),
      responses: {
        202: {
          description:
            'The scan outlived COMMAND_WAIT_MS; follow GET /api/network/scan-status, then GET /api/network/scan',
          schema: z.object({
            status: z.literal('scanning'),
            command_id: z.string(),
            subnet: z.string(),
            node_id: z.string(),
            started_at: z.string(),
            follow: z.string(),
          }),
        },
        404: 'Unknown node_id',
        409: 'The node is offline, or no node is online',
        422: 'Not an IPv4 subnet, or larger than /22',
        502: 'The agent could not scan',
      },
      handler: async (req, ctx) => scanSubnet(ctx, req.query),
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/network/scan-status',
      summary: 'The latest scan started: idle (none yet), scanning, completed or failed',
      response: z.object({
        status: z.enum(['idle', 'scanning', 'completed', 'failed']),
        subnet: z.string().nullable(),
        node_id: z.string().nullable(),
        started_at: z.string().nullable(),
        completed_at: z.string().nullable(),
        devices_found: z.number().int(),
        error: z.string().nullable(),
      }),
      handler: async (_req, ctx) => scanStatus(ctx),
    }),
  ];
}
