/**
 * Nodes: what readers import. The concerns live apart: node-model.ts (the node as read),
 * registration.ts (the registry), heartbeat.ts (heartbeat ingestion), eligible-index.ts (the
 * liveness sweep and the eligible-node index); node-records.ts is how they are stored.
 */
export * from './node-model.js';
export * from './registration.js';
export * from './heartbeat.js';
export * from './eligible-index.js';
export * from './fleet-counts.js';
