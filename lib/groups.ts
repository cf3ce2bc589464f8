import type { RouteGroup } from '../functions/core/route.js';

/** Every route group, one Lambda function each. RouteGroup is only a type, so the list lives here. */
export const ROUTE_GROUPS = [
  'system',
  'orchestrator',
  'agent',
  'training',
  'cluster',
  'vision',
  'fleet',
  'novita',
] as const satisfies readonly RouteGroup[];

// Fails to compile when a group is added to RouteGroup but not to the list above.
type Missing = Exclude<RouteGroup, (typeof ROUTE_GROUPS)[number]>;
const complete: [Missing] extends [never] ? true : Missing = true;
void complete;

/** The Lambda entry file of a group, relative to the repository root. */
export const groupEntry = (group: RouteGroup) => `functions/handlers/${group}.ts`;
export const EVENTS_ENTRY = 'functions/handlers/events.ts';
/** The WebSocket API's `$connect` / `$disconnect` function. */
export const WEBSOCKET_ENTRY = 'functions/handlers/websocket.ts';

/** CloudFormation-friendly id: `novita` → `Novita`. */
export const pascal = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** A record with one value per group. */
export function byGroup<T>(make: (group: RouteGroup) => T): Record<RouteGroup, T> {
  return Object.fromEntries(ROUTE_GROUPS.map((group) => [group, make(group)])) as Record<RouteGroup, T>;
}
