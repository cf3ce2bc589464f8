import { httpEntry } from '../core/lambda.js';
import { buildRoutes } from '../build/routes.js';
import { aiRoutes } from '../fleet/ai-routes.js';
import { fleetClusterRoutes } from '../fleet/clusters.js';
import { networkRoutes } from '../fleet/network-routes.js';
import { fleetNodeRoutes } from '../fleet/routes.js';
import { swarmRoutes } from '../fleet/swarm.js';
import { vaultRoutes } from '../fleet/vault.js';

export const handler = httpEntry([...fleetNodeRoutes(), ...fleetClusterRoutes(), ...swarmRoutes(), ...vaultRoutes(), ...aiRoutes(), ...buildRoutes(), ...networkRoutes()]);
