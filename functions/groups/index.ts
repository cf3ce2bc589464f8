import type { RouteGroup } from '../core/route.js';
import { group as agent } from './agent.js';
import { group as cluster } from './cluster.js';
import { group as fleet } from './fleet.js';
import { group as novita } from './novita.js';
import { group as orchestrator } from './orchestrator.js';
import { group as system } from './system.js';
import { group as training } from './training.js';
import { group as vision } from './vision.js';

/** Every route group, in table order (the first route that matches wins in the local router). */
export const ROUTE_GROUP_DEFS = [
  system,
  agent,
  orchestrator,
  fleet,
  cluster,
  vision,
  training,
  novita,
] as const;

/** The group names; RouteGroup is only a type. */
export const ROUTE_GROUPS = ROUTE_GROUP_DEFS.map((g) => g.name);

/** The Lambda entry of a group, relative to the repository root: its declaration module. */
export const groupEntry = (group: RouteGroup) => `functions/groups/${group}.ts`;

// Fails to compile when a group is added to RouteGroup but not declared above.
type Missing = Exclude<RouteGroup, (typeof ROUTE_GROUP_DEFS)[number]['name']>;
const complete: [Missing] extends [never] ? true : Missing = true;
void complete;
