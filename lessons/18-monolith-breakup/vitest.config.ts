import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// The lesson's own tests: the monolith's and each service's, as their teams would run them.
//   DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379 \
//     npx vitest run --root lessons/18-monolith-breakup
// Each test works in a schema of its own (testing/harness.ts), so they can run on a shared server.
export default defineConfig({
  // Vite's cache outside the lesson folder, which holds only the lesson's own files.
  cacheDir: join(tmpdir(), 'vitest-18-monolith-breakup'),
  test: {
    root: import.meta.dirname,
    include: ['**/*.test.ts'],
    // One worker and no isolation: the five small suites share one process and load the libraries once.
    maxWorkers: 1,
    isolate: false,
    testTimeout: 30_000,
  },
});
