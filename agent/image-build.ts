import { realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { BUILD_ERRORS, type ImageBuildOutput } from '../protocol/build.js';
import type { Command } from '../protocol/commands.js';
import { ImageStreamError } from './engine/errors.js';
import type { EngineDriver } from './engine/types.js';

type ImageBuildCommand = Extract<Command, { type: 'image.build' }>;

/** Lines of build and push output a result carries (the end is kept). */
export const LOG_TAIL_LINES = 60;
const LOG_TAIL_CHARS = 16 * 1024;

export class BuildDisabledError extends Error {
  override name = BUILD_ERRORS.disabled;
  constructor() {
    super('image builds are disabled on this node: start its agent with --build-root <dir> (or FLEET_BUILD_ROOT) to allow builds of folders under it');
  }
}

export class BuildPathError extends Error {
  override name = BUILD_ERRORS.path;
}

export class BuildFailedError extends Error {
  override name = BUILD_ERRORS.build;
}

export class PushFailedError extends Error {
  override name = BUILD_ERRORS.push;
}

export function logTail(lines: string[]): string {
  const text = lines.slice(-LOG_TAIL_LINES).join('\n');
  return text.length > LOG_TAIL_CHARS ? text.slice(-LOG_TAIL_CHARS) : text;
}

/**
 * The build context of `dockerfilePath` (relative paths are taken from the root): its folder, which
 * must lie inside `buildRoot` once symlinks are resolved, so a link cannot lead a build out of it.
 */
export async function resolveBuildContext(
  buildRoot: string,
  dockerfilePath: string,
): Promise<{ contextDir: string; dockerfile: string }> {
  const root = await realpath(buildRoot).catch(() => {
    throw new BuildPathError(`the build root ${buildRoot} does not exist on this node`);
  });
  const asked = isAbsolute(dockerfilePath) ? dockerfilePath : resolve(root, dockerfilePath);
  const file = await realpath(asked).catch(() => {
    throw new BuildPathError(`${dockerfilePath} does not exist on this node`);
  });
  const inside = (p: string) => p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
  if (!inside(file)) throw new BuildPathError(`${dockerfilePath} is outside the build root ${buildRoot}`);
  if (!(await stat(file)).isFile()) throw new BuildPathError(`${dockerfilePath} is not a file`);
  const contextDir = dirname(file);
  return { contextDir, dockerfile: relative(contextDir, file) || basename(file) };
}

/** image.build: context checked, built, tagged, pushed. Redelivery is the journal's concern. */
export async function buildAndPush(
  engine: EngineDriver,
  command: ImageBuildCommand,
  buildRoot: string | undefined,
): Promise<ImageBuildOutput> {
  if (!buildRoot) throw new BuildDisabledError();
  const { contextDir, dockerfile } = await resolveBuildContext(buildRoot, command.dockerfilePath);
  const deadline = Date.now() + command.timeoutSeconds * 1000;
  const log: string[] = [];
  let imageId: string;
  try {
    const built = await engine.buildImage({
      contextDir,
      dockerfile,
      tag: command.image,
      buildArgs: command.buildArgs,
      timeoutMs: Math.max(deadline - Date.now(), 1),
    });
    imageId = built.imageId;
    log.push(...built.log);
  } catch (error) {
    if (error instanceof ImageStreamError) log.push(...error.log);
    throw new BuildFailedError(`${(error as Error).message}\n${logTail(log.slice(-15))}`.trim());
  }
  if (!command.push) return { image: command.image, imageId, pushed: false, digest: null, logTail: logTail(log) };
  try {
    const pushed = await engine.pushImage(command.image, {
      insecure: command.insecureRegistry,
      timeoutMs: Math.max(deadline - Date.now(), 1),
    });
    log.push(...pushed.log);
    return { image: command.image, imageId, pushed: true, digest: pushed.digest, logTail: logTail(log) };
  } catch (error) {
    if (error instanceof ImageStreamError) log.push(...error.log);
    throw new PushFailedError(`${command.image} was built (${imageId}) but not pushed: ${(error as Error).message}`);
  }
}
