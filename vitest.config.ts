import { defineConfig } from 'vitest/config';
import { targetRoot } from './tooling/course/paths.ts';

// Checks import the code under test as `@lesson/NN-slug/file.ts`; the alias points at the
// learner's `lessons/`, the reference `solutions/`, or a known-wrong fixture (see paths.ts).
export default defineConfig({
  resolve: {
    alias: [{ find: /^@lesson\//, replacement: `${targetRoot()}/` }],
  },
  test: {
    pool: 'forks',
    setupFiles: ['checks/support/journal.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    teardownTimeout: 10_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'checks',
          include: ['checks/*.test.ts', 'checks/smoke/*.test.ts'],
          globalSetup: ['checks/support/global-setup.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['tooling/tests/**/*.test.ts'],
        },
      },
      {
        // Deliberately broken checks that the runner's own tests grade (hangs, crashes).
        extends: true,
        test: {
          name: 'runner-fixtures',
          include: ['tooling/tests/runner-fixtures/*.check.ts'],
        },
      },
    ],
  },
});
