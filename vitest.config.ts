import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Starts a private redis-server when one is on the PATH, and says which suites lack a binary.
    globalSetup: ['test/setup/services.ts'],
    // Integration suites boot real servers and a real TensorFlow.js backend; two cores in CI.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
