export class EngineError extends Error {
  override name = 'EngineError';
  constructor(
    readonly op: string,
    message: string,
    readonly statusCode?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class EngineTimeoutError extends EngineError {
  override name = 'EngineTimeoutError';
}

export class ContainerNotFoundError extends EngineError {
  override name = 'ContainerNotFoundError';
}

/** A build or push the engine reported as failed, with the output it streamed up to there. */
export class ImageStreamError extends EngineError {
  override name = 'ImageStreamError';
  constructor(
    op: string,
    message: string,
    readonly log: string[],
    statusCode?: number,
  ) {
    super(op, message, statusCode);
  }
}

/** diskLimitGb was asked for and the engine cannot enforce it: the command fails rather than run unlimited. */
export class DiskLimitUnsupportedError extends Error {
  override name = 'DiskLimitUnsupportedError';
  constructor(
    readonly diskLimitGb: number,
    readonly reason: string,
  ) {
    super(
      `diskLimitGb=${diskLimitGb} cannot be enforced on this node: ${reason}. ` +
        'A container size limit needs overlay2 on xfs mounted with pquota, or btrfs, zfs or devicemapper; ' +
        'refusing to start the container without it.',
    );
  }
}

/** GPUs were asked for and the engine has no GPU runtime: the container would start without them. */
export class GpuUnsupportedError extends Error {
  override name = 'GpuUnsupportedError';
  constructor(
    readonly gpus: number | 'all',
    reason: string,
  ) {
    super(
      `gpus=${gpus} cannot be honoured on this node: ${reason}; refusing to start the container without GPUs.`,
    );
  }
}

export function statusCodeOf(error: unknown): number | undefined {
  const code = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** Docker answers 409 to a taken name; Podman's compat API has answered 500 "name already in use". */
export function isNameConflict(error: unknown): boolean {
  const status = (error as EngineError).statusCode;
  return status === 409 || (status === 500 && /already in use/i.test(engineMessage(error)));
}

/** The engine's own words from a dockerode error ("no such container", "port is already allocated"). */
export function engineMessage(error: unknown): string {
  const e = error as {
    json?: { message?: string; cause?: string } | null;
    reason?: string;
    message?: string;
    cause?: unknown;
  } | null;
  if (e instanceof EngineError) return e.message;
  const fromJson = e?.json?.message ?? e?.json?.cause;
  if (typeof fromJson === 'string' && fromJson) return fromJson;
  return e?.message ?? String(error);
}
