/**
 * What /openapi.json says of each operation beyond its summary: a description (defaults, units,
 * what waits for agents), a request example that its body schema accepts (Swagger's "Try it out"
 * is pre-filled with it), path parameter examples and, for the main operations, a response
 * example. Keyed `METHOD path` as in the route table; test/unit/core/openapi.test.ts holds every
 * operation to an entry and every example to its schema.
 */
import { COMMANDER_DOCS } from './operation-docs/commander.js';
import { FLEET_RESPONSE_EXAMPLES } from './operation-docs/examples-fleet.js';
import { JOB_RESPONSE_EXAMPLES } from './operation-docs/examples-jobs.js';
import { OPS_RESPONSE_EXAMPLES } from './operation-docs/examples-ops.js';
import { WORKLOAD_RESPONSE_EXAMPLES } from './operation-docs/examples-workloads.js';
import { INFERENCE_DOCS } from './operation-docs/inference.js';
import { JOB_DOCS } from './operation-docs/jobs.js';
import type { OperationDoc } from './operation-docs/shared.js';
import { SYSTEM_DOCS } from './operation-docs/system.js';
import { WORKLOAD_DOCS } from './operation-docs/workloads.js';

export { PENDING_EXAMPLE, type OperationDoc } from './operation-docs/shared.js';

/** Every operation's entry, from the tables of operation-docs/ (one per part of the API). */
export const OPERATION_DOCS: Record<string, OperationDoc> = {
  ...SYSTEM_DOCS,
  ...WORKLOAD_DOCS,
  ...COMMANDER_DOCS,
  ...INFERENCE_DOCS,
  ...JOB_DOCS,
};

/** The key of an operation in OPERATION_DOCS. */
export const docKey = (method: string, path: string) => `${method.toUpperCase()} ${path}`;

// ------------------------------------------------------------------ response examples
// The operations whose entries carry no `response` get theirs from these tables.
const RESPONSE_EXAMPLES = {
  ...FLEET_RESPONSE_EXAMPLES,
  ...OPS_RESPONSE_EXAMPLES,
  ...WORKLOAD_RESPONSE_EXAMPLES,
  ...JOB_RESPONSE_EXAMPLES,
};
for (const [key, response] of Object.entries(RESPONSE_EXAMPLES)) {
  const entry = OPERATION_DOCS[key];
  if (entry && entry.response === undefined) entry.response = response;
}
