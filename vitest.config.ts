import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Docker Engine only: run by the second pass (vitest.docker-engine.config.ts).
    exclude: ['**/node_modules/**', 'test/integration/engine/gpu-docker.test.ts'],
    // Integration suites share one moto server and one engine: run files one at a time.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
