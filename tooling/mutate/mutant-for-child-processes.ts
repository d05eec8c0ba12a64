import { beforeAll, inject } from 'vitest';

// Stryker switches mutants on inside the test process only. Lesson processes that a check starts
// (workers, consumers, HTTP services) run the same instrumented files, and read the active mutant
// from this environment variable instead; they inherit it from the test process.
const MUTANT_ENV = '__STRYKER_ACTIVE_MUTANT__';

declare module 'vitest' {
  export interface ProvidedContext {
    mode: 'dry-run' | 'mutant';
    activeMutant: string;
  }
}

beforeAll(() => {
  if (inject('mode') === 'mutant') process.env[MUTANT_ENV] = inject('activeMutant');
  else delete process.env[MUTANT_ENV];
});
