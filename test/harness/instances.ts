/** A container instance record as the orchestrator stores it, for suites that write copies directly. */
import { keys } from '../../functions/core/keys.js';
import type { InstanceItem } from '../../functions/orchestrator/model.js';
import type { InstanceStatus } from '../../functions/orchestrator/plan.js';

export function instanceItem(o: {
  imageId: string;
  nodeId: string;
  instanceId: string;
  status: InstanceStatus;
  ordinal: number;
  /** createdAt and updatedAt (ISO). */
  at: string;
}): InstanceItem {
  return {
    ...keys.instance(o.instanceId),
    ...keys.instanceIndexes(o.imageId, o.nodeId, o.instanceId),
    instanceId: o.instanceId,
    imageId: o.imageId,
    nodeId: o.nodeId,
    name: `container-${o.instanceId}`,
    status: o.status,
    ordinal: o.ordinal,
    resources: {},
    reserve: { cpu: 0, memoryMb: 0, diskGb: 0, gpus: 0 },
    containerPorts: [],
    ports: [],
    createdAt: o.at,
    updatedAt: o.at,
  };
}
