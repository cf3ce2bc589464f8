import * as z from 'zod';

/** What an image.build result carries (agent and control plane both import it). */
export const imageBuildOutput = z.object({
  image: z.string(),
  imageId: z.string(),
  pushed: z.boolean(),
  /** The manifest digest the registry answered, when the engine reported one. */
  digest: z.string().nullable(),
  /** The last lines of the build and push output. */
  logTail: z.string(),
});
export type ImageBuildOutput = z.infer<typeof imageBuildOutput>;

/** `output.errorType` values of a failed image.build, each answered with its own status. */
export const BUILD_ERRORS = {
  /** The agent has no --build-root: builds are off on that node. */
  disabled: 'BuildDisabledError',
  /** The Dockerfile is outside the build root, or missing. */
  path: 'BuildPathError',
  /** The engine refused or the Dockerfile failed. */
  build: 'BuildFailedError',
  /** Built, but the registry refused the push or could not be reached. */
  push: 'PushFailedError',
} as const;
