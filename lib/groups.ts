import type { RouteGroup } from '../functions/core/route.js';
import { ROUTE_GROUPS, groupEntry } from '../functions/groups/index.js';

export { ROUTE_GROUPS, groupEntry };
export const EVENTS_ENTRY = 'functions/handlers/events.ts';
/** The WebSocket API's `$connect` / `$disconnect` function. */
export const WEBSOCKET_ENTRY = 'functions/handlers/websocket.ts';

/** CloudFormation-friendly id: `novita` → `Novita`. */
export const pascal = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** A record with one value per group. */
export function byGroup<T>(make: (group: RouteGroup) => T): Record<RouteGroup, T> {
  return Object.fromEntries(ROUTE_GROUPS.map((group) => [group, make(group)])) as Record<RouteGroup, T>;
}
