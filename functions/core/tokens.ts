import { createHash, randomBytes } from 'node:crypto';

/**
 * Agent credentials: `<nodeId>.<secret>`. The node id in front lets one GetItem find the node;
 * only the SHA-256 of the whole token is stored, so a table dump reveals no credential.
 */
export function newToken(nodeId: string): string {
  return `${nodeId}.${randomBytes(32).toString('base64url')}`;
}

/** SHA-256 (hex) of a credential or join token: what the table stores in its place. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
