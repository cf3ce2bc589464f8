import { toReservation } from '../orchestrator/resources.js';
import type { ContainerSpec } from '../../protocol/commands.js';
import { LABELS } from '../../protocol/messages.js';
import type { JobItem, RunItem } from './model.js';
import type { TrainingSettings } from './settings.js';

/** The container a run's attempt starts, and the id of the command that starts it. */

const CHECKPOINT_MOUNT = '/checkpoints';

export function containerSpec(
  job: JobItem,
  run: RunItem,
  settings: Pick<TrainingSettings, 'checkpointRoot' | 'checkpointSyncSeconds'>,
): ContainerSpec {
  const r = toReservation(job.resources);
  const mount = job.checkpointPath ?? CHECKPOINT_MOUNT;
  return {
    instanceId: run.instanceId,
    imageId: job.image,
    name: run.instanceId,
    kind: 'run',
    command: job.command,
    env: {
      ...job.env,
      CHECKPOINT_DIR: mount,
      TRAINING_JOB_ID: job.jobId,
      TRAINING_ATTEMPT: String(run.attempt),
    },
    ports: [],
    volumes: [
      {
        hostPath: checkpointFolder(settings.checkpointRoot, job.jobId),
        containerPath: mount,
        readOnly: false,
      },
    ],
    // The agent restores this folder from the artifacts store before the start and uploads it while it runs.
    checkpoint: {
      jobId: job.jobId,
      attempt: run.attempt,
      containerPath: mount,
      syncSeconds: settings.checkpointSyncSeconds,
    },
    ...(r.cpu ? { cpuLimit: r.cpu } : {}),
    ...(r.memoryMb ? { memoryLimitMb: r.memoryMb } : {}),
    ...(r.diskGb ? { diskLimitGb: r.diskGb } : {}),
    ...(r.gpus ? { gpus: r.gpus } : {}),
    labels: { [LABELS.run]: run.instanceId, 'fleet.job': job.jobId },
    // Retries are the control plane's: it may place the next attempt elsewhere.
    restart: 'no',
  };
}

/** The host folder a job's runs keep their checkpoints in (each node's policy must allow it). */
export const checkpointFolder = (checkpointRoot: string, jobId: string) => `${checkpointRoot}/${jobId}`;

export const startCommandId = (run: RunItem) => `start-${run.instanceId}`;
