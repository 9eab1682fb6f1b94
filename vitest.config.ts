import { defineConfig } from 'vitest/config';

// Suites start real servers (HTTP source, later GCS and Prefect) and run DuckDB: give them room,
// and run files one at a time so two DuckDB conversions never fight over 2 cores.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
