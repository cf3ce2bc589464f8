import { defineConfig } from 'vitest/config';

// The test registry (REGISTRY_URL, .ci/services.sh) is on loopback, which the control plane refuses
// at start unless OUTBOUND_ALLOWLIST names it; services.sh exports both, an older environment only the first.
const registry = process.env.REGISTRY_URL;
const env =
  registry && process.env.OUTBOUND_ALLOWLIST === undefined && URL.canParse(registry)
    ? { OUTBOUND_ALLOWLIST: new URL(registry).hostname }
    : {};

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    env,
    // Docker Engine only: run by the second pass (vitest.docker-engine.config.ts).
    exclude: ['**/node_modules/**', 'test/integration/engine/gpu-docker.test.ts'],
    // Integration suites share one moto server and one engine: run files one at a time.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
