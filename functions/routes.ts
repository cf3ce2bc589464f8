import type { AnyRoute } from './core/route.js';
import { systemRoutes } from './system/routes.js';

/**
 * The route table: every route of the API, declared once. The CDK stack, the local runtime
 * and /openapi.json are all generated from it.
 */
export const routes: AnyRoute[] = [...systemRoutes(() => routes)];

export const routesOfGroup = (group: AnyRoute['group']) => routes.filter((r) => r.group === group);

// Fleet: node agents, the Nodes API, the orchestrator (containers, registry) over the fleet.
import { agentRoutes } from './fleet/agent-routes.js';
import { fleetNodeRoutes } from './fleet/routes.js';
import { orchestratorRoutes } from './orchestrator/routes.js';
routes.push(...agentRoutes(), ...fleetNodeRoutes(), ...orchestratorRoutes());

// Fleet Commander clusters, swarm (services over the orchestrator's desired counts) and vault.
import { fleetClusterRoutes } from './fleet/clusters.js';
import { swarmRoutes } from './fleet/swarm.js';
import { vaultRoutes } from './fleet/vault.js';
routes.push(...fleetClusterRoutes(), ...swarmRoutes(), ...vaultRoutes());

// Cluster Manager API and Vision API over one shared task queue.
import { clusterRoutes } from './cluster/routes.js';
import { visionRoutes } from './vision/routes.js';
routes.push(...clusterRoutes(), ...visionRoutes());

// Training Job Orchestrator API.
import { trainingRoutes } from './training/routes.js';
routes.push(...trainingRoutes());

// Novita GPU Instance API: managed cloud instances, metrics, spot migration.
import { novitaRoutes } from './novita/routes.js';
routes.push(...novitaRoutes());

// Fleet Commander AI Assistant API: Bedrock's Converse API over the fleet's recorded state.
import { aiRoutes } from './fleet/ai-routes.js';
routes.push(...aiRoutes());

// Fleet Commander Build API: images built and pushed by node agents, deployed as swarm services.
import { buildRoutes } from './build/routes.js';
routes.push(...buildRoutes());

// Fleet Commander Network API: LAN scans run by a node's agent (join and auto-join are not served).
import { networkRoutes } from './fleet/network-routes.js';
routes.push(...networkRoutes());
// Fleet Commander Maintenance API (problems, daily run, quick fixes, disk audit) and SSH API
// (commands run by the node's agent), over the same nodes and containers.
import { maintenanceRoutes } from './fleet/maintenance-routes.js';
import { sshRoutes } from './fleet/ssh.js';
routes.push(...maintenanceRoutes(), ...sshRoutes());
