import { afterAll, beforeAll, inject } from 'vitest';

// Stryker switches mutants on inside the test process only, and learns from the code the test
// process ran which requirements can notice which mutant. Much of a lesson runs in processes a check
// starts (workers, consumers, HTTP services): they run the same instrumented files, read the active
// mutant from this environment variable, inherited from the test process, and report no coverage.
const MUTANT_ENV = '__STRYKER_ACTIVE_MUTANT__';

declare module 'vitest' {
  export interface ProvidedContext {
    globalNamespace: string;
    mode: 'dry-run' | 'mutant';
    activeMutant: string;
  }
}

beforeAll(() => {
  if (inject('mode') === 'mutant') process.env[MUTANT_ENV] = inject('activeMutant');
  else delete process.env[MUTANT_ENV];
});

// Without coverage, Stryker grades every mutant with every requirement, as it must here. After-all
// hooks run in reverse order, so this runs before Stryker's own hook reads the coverage.
afterAll(() => {
  if (inject('mode') !== 'dry-run') return;
  const namespace = (globalThis as Record<string, { mutantCoverage?: unknown } | undefined>)[inject('globalNamespace')];
  if (namespace) delete namespace.mutantCoverage;
});
