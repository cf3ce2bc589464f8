/** The statuses this API documents. */
export const INSTANCE_STATUSES = ['creating', 'starting', 'running', 'failed', 'stopped', 'exited'] as const;
export type InstanceStatus = (typeof INSTANCE_STATUSES)[number];

/**
 * Novita's instance status onto ours. Transitional states read as where they lead: a stop in
 * progress is `stopped`, a removal `exited`; a migration or restart is `starting` again.
 * Unknown statuses return undefined so the caller keeps what it knew.
 */
export function mapNovitaStatus(novitaStatus: string): InstanceStatus | undefined {
  switch (novitaStatus) {
    case 'pending':
    case 'toCreate':
    case 'creating':
      return 'creating';
    case 'pulling':
    case 'toStart':
    case 'starting':
    case 'toRestart':
    case 'restarting':
    case 'toReset':
    case 'resetting':
    case 'migrating':
      return 'starting';
    case 'running':
      return 'running';
    case 'toStop':
    case 'stopping':
    case 'freezing':
      return 'stopped';
    case 'exited':
    case 'toRemove':
    case 'removing':
    case 'removed':
      return 'exited';
    default:
      return undefined;
  }
}

/** What one status read means for an instance still starting up. */
export type StartupOutcome =
  | { kind: 'waiting'; status: 'creating' | 'starting' }
  | { kind: 'ready' }
  | { kind: 'failed'; code: string; message: string };

export function startupOutcome(
  novita: { status: string; statusError?: { state?: string; message?: string } },
  current: 'creating' | 'starting',
): StartupOutcome {
  const mapped = mapNovitaStatus(novita.status);
  if (mapped === 'running') return { kind: 'ready' };
  if (novita.statusError?.state || novita.statusError?.message) {
    return {
      kind: 'failed',
      code: 'NOVITA_INSTANCE_ERROR',
      message: novita.statusError.message || `Novita reported ${novita.statusError.state}`,
    };
  }
  if (mapped === 'stopped' || mapped === 'exited') {
    return { kind: 'failed', code: 'INSTANCE_EXITED', message: `Instance became ${novita.status} before it was running` };
  }
  return { kind: 'waiting', status: mapped === 'creating' || mapped === 'starting' ? mapped : current };
}

/** A spot instance Novita reclaimed: `exited` with a reclaim time set (`"0"` means none). */
export function isSpotReclaimed(i: { status: string; spotReclaimTime?: string }): boolean {
  const t = i.spotReclaimTime?.trim();
  return i.status === 'exited' && !!t && t !== '0';
}
