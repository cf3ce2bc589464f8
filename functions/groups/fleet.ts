import { buildRoutes } from '../build/routes.js';
import { accessRoutes } from '../fleet/access-routes.js';
import { defineRouteGroup } from '../core/route-group.js';
import { aiRoutes } from '../fleet/ai-routes.js';
import { fleetClusterRoutes } from '../fleet/clusters.js';
import { metricHistoryRoutes } from '../fleet/metric-history-routes.js';
import { maintenanceRoutes } from '../fleet/maintenance-routes.js';
import { networkRoutes } from '../fleet/network-routes.js';
import { fleetNodeRoutes } from '../fleet/node-routes.js';
import { installRoutes } from '../fleet/install-routes.js';
import { sshRoutes } from '../fleet/ssh.js';
import { swarmRoutes } from '../fleet/swarm.js';
import { vaultRoutes } from '../fleet/vault.js';

/**
 * The Fleet Commander API: nodes, clusters, swarm services, vault, AI assistant, builds, network
 * scans, the install queue (onboarding over SSH), maintenance and SSH; API keys and the audit log.
 */
export const group = defineRouteGroup('fleet', [
  ...fleetNodeRoutes(),
  ...metricHistoryRoutes(),
  ...fleetClusterRoutes(),
  ...swarmRoutes(),
  ...vaultRoutes(),
  ...aiRoutes(),
  ...buildRoutes(),
  ...networkRoutes(),
  ...installRoutes(),
  ...maintenanceRoutes(),
  ...sshRoutes(),
  ...accessRoutes(),
]);
export const handler = group.handler;
