import { defineConfig } from 'vitest/config';
import { targetRoot } from '../course/paths.ts';

// The configuration `npm run mutate` hands to StrykerJS: the checks project alone (Stryker names the
// lesson's check file), grading the folder COURSE_TARGET_ROOT names, as the course's own config does.
export default defineConfig({
  resolve: {
    alias: [{ find: /^@lesson\//, replacement: `${targetRoot()}/` }],
  },
  test: {
    include: ['checks/*.test.ts'],
    setupFiles: ['checks/support/journal.ts', 'tooling/mutate/activate-mutant.ts'],
    globalSetup: ['checks/support/global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    teardownTimeout: 10_000,
  },
});
