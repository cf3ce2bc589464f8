import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The second pass of `npm test`: the suites that exercise engine behaviour, again on Docker Engine
 * (dockerd started by .ci/services.sh, FLEET_DOCKERD_HOST), where the first pass ran them on Podman.
 * GPU requests are checked only here: Podman's compat API has no nvidia runtime to stand in for.
 */
export const DOCKER_ENGINE_SUITES = [
  'test/integration/engine/*.test.ts',
  'test/integration/agent/engine.test.ts',
  'test/integration/agent/agent.test.ts',
  'test/e2e/orchestrator.e2e.test.ts',
];

const dockerd = process.env.FLEET_DOCKERD_HOST;
if (!dockerd && process.env.CI === 'true')
  throw new Error(
    'CI=true and FLEET_DOCKERD_HOST is unset: no Docker Engine for the second pass (eval "$(.ci/services.sh)")',
  );

export default defineConfig({
  test: {
    ...base.test,
    include: DOCKER_ENGINE_SUITES,
    exclude: [],
    // Without a dockerd (outside CI) DOCKER_HOST is emptied, so the suites skip and say why.
    env: { DOCKER_HOST: dockerd ?? '' },
  },
});
