/**
 * Roles of API keys: `viewer` (every GET and the WebSocket streams), `operator` (also what
 * starts, stops, scales and submits), `admin` (also keys, audit, vault, host exec, join tokens,
 * the maintenance switch).
 */
export type Role = 'viewer' | 'operator' | 'admin';
export const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];
const rank = (r: Role) => ROLES.indexOf(r);
export const allows = (have: Role, need: Role) => rank(have) >= rank(need);

/** A route's role: declared, or by method (reads for viewers, the rest for operators). */
export function requiredRole(route: { method: string; role?: Role }): Role {
  return route.role ?? (route.method === 'GET' ? 'viewer' : 'operator');
}

export type Principal =
  | { type: 'key'; keyId: string; name: string; role: Role }
  /** A signed-in user: a JWT of the configured issuer (functions/core/jwt.ts). */
  | { type: 'user'; subject: string; name: string; role: Role }
  /** A route's own credential (a join token or node credential on /agent/register). */
  | { type: 'route-credential' }
  /** API_AUTH=false: nobody is asked. */
  | { type: 'anonymous' };
