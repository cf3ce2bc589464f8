import { buildRoutes } from '../commander/build/routes.js';
import { accessRoutes } from '../commander/access-routes.js';
import { defineRouteGroup } from '../core/route-group.js';
import { aiRoutes } from '../commander/ai-routes.js';
import { fleetClusterRoutes } from '../commander/clusters.js';
import { metricHistoryRoutes } from '../nodes/metric-history-routes.js';
import { maintenanceRoutes } from '../commander/maintenance/routes.js';
import { networkRoutes } from '../commander/network-routes.js';
import { fleetNodeRoutes } from '../nodes/routes.js';
import { installRoutes } from '../commander/install-routes.js';
import { sshRoutes } from '../commander/ssh.js';
import { swarmRoutes } from '../commander/swarm.js';
import { vaultRoutes } from '../commander/vault.js';

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
