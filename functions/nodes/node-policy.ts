import { HttpError } from '../core/errors.js';
import { policyRefusal, type PolicySubject, type ReportedPolicy } from '../../protocol/policy.js';

/**
 * The control plane's reading of the policies nodes report (protocol/policy.ts): a node refuses
 * what its policy does not allow, so nothing it would refuse is queued for it. A node that reported
 * no policy (an older agent) is left to judge for itself.
 */

/** The spec as the node's agent mounts it: the checkpoint folder under the node's own root (agent/checkpoints.ts). */
function onNode(spec: PolicySubject, policy: ReportedPolicy): PolicySubject {
  const cp = spec.checkpoint;
  if (!cp || !policy.checkpointRoot) return spec;
  const folder = `${policy.checkpointRoot.replace(/\/+$/, '')}/${cp.jobId}`;
  return {
    ...spec,
    volumes: spec.volumes.map((v) => (v.containerPath === cp.containerPath ? { ...v, hostPath: folder } : v)),
  };
}

/** Why `node` would refuse `spec` (its message names the rule and the flag), or undefined. */
export function policyRefusalOn(
  node: { policy?: ReportedPolicy | undefined },
  spec: PolicySubject,
): string | undefined {
  if (!node.policy) return undefined;
  const refusal = policyRefusal(onNode(spec, node.policy), node.policy, {
    engineSocket: node.policy.engineSocket,
  });
  return refusal && `refused by this node's policy (${refusal.rule}): ${refusal.message}`;
}

/**
 * Why `spec` cannot run on any of `candidates` (the nodes that could take it by state and
 * constraints): each one's policy refuses it. Undefined when one allows it, one reported no
 * policy, or there is no candidate (the caller's own answer, no capacity or a wait, stands).
 */
export function refusalAcross(
  candidates: readonly { nodeName: string; policy?: ReportedPolicy | undefined }[],
  spec: PolicySubject,
  what: string,
): string | undefined {
  if (!candidates.length) return undefined;
  const byReason = new Map<string, string[]>();
  for (const node of candidates) {
    const refusal = policyRefusalOn(node, spec);
    if (!refusal) return undefined;
    byReason.set(refusal, [...(byReason.get(refusal) ?? []), node.nodeName]);
  }
  const reasons = [...byReason].map(([reason, names]) => `${names.join(', ')}: ${reason}`);
  return `No node that could run ${what} allows it: ${reasons.join('; ')}. Nothing was kept`;
}

/** 422 START_REFUSED when every candidate's policy refuses `spec`: queueing it would only have it refused. */
export function refuseUnlessAllowed(
  candidates: readonly { nodeName: string; policy?: ReportedPolicy | undefined }[],
  spec: PolicySubject,
  what: string,
): void {
  const refusal = refusalAcross(candidates, spec, what);
  if (refusal) throw new HttpError(422, refusal, 'START_REFUSED');
}
