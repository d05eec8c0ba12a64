import { afterAll, inject } from 'vitest';

// Stryker switches a mutant on in a before-all hook when it grades the mutant with every test: too
// late for code that runs while the lesson's modules load (`export const BINDINGS = { … }`), whose
// mutants then always survived. This setup file runs before the check file imports the lesson, so
// the mutant is on from the first line of the lesson's code.
//
// Much of a lesson also runs in processes a check starts (workers, consumers, HTTP services): they
// run the same instrumented files and read the active mutant from this environment variable,
// inherited from the test process.
const MUTANT_ENV = '__STRYKER_ACTIVE_MUTANT__';

declare module 'vitest' {
  export interface ProvidedContext {
    globalNamespace: string;
    mode: 'dry-run' | 'mutant';
    activeMutant: string;
  }
}

type StrykerNamespace = { activeMutant?: string; mutantCoverage?: unknown };
const globals = globalThis as Record<string, StrykerNamespace | undefined>;
const namespace = (globals[inject('globalNamespace')] ??= {});

if (inject('mode') === 'mutant') {
  namespace.activeMutant = inject('activeMutant');
  process.env[MUTANT_ENV] = inject('activeMutant');
} else {
  delete process.env[MUTANT_ENV];
}

// Without coverage, Stryker grades every mutant with every requirement, as it must here. After-all
// hooks run in reverse order, so this runs before Stryker's own hook reads the coverage.
afterAll(() => {
  if (inject('mode') === 'dry-run') delete namespace.mutantCoverage;
});
