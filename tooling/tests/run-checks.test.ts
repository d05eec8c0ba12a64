import { describe, expect, it } from 'vitest';
import { countRequirements, runPassed, teachingMessage, vitestArguments, type CheckRun } from '../course/run-checks.ts';

describe('teachingMessage', () => {
  it('turns a vitest timeout into an explanation with the limit', () => {
    const message = teachingMessage('Test timed out in 10000ms.\nIf this is a long-running test…', 10);
    expect(message).toMatch(/did not finish within 10 s/);
    expect(message).toMatch(/never settles/);
  });

  it('says plainly that a TODO is still a TODO', () => {
    expect(teachingMessage('TODO: EventBus.on', 10)).toBe('not written yet: EventBus.on still throws its TODO.');
  });

  it('keeps a check’s own message as it is', () => {
    expect(teachingMessage('  expected one event, saw 2  ', 10)).toBe('expected one event, saw 2');
  });
});

describe('results', () => {
  const run = (states: Array<'passed' | 'failed'>, extra: Partial<CheckRun> = {}): CheckRun => ({
    files: [{ file: 'checks/x.test.ts', requirements: states.map((state, i) => ({ file: 'checks/x.test.ts', name: `r${i}`, state, durationMs: 1 })) }],
    unhandledErrors: [],
    ...extra,
  });

  it('counts passed requirements', () => {
    expect(countRequirements(run(['passed', 'failed', 'passed']))).toEqual({ passed: 2, total: 3 });
  });

  it('passes only when every requirement passed and nothing escaped', () => {
    expect(runPassed(run(['passed', 'passed']))).toBe(true);
    expect(runPassed(run(['passed', 'failed']))).toBe(false);
    expect(runPassed(run(['passed'], { unhandledErrors: ['boom'] }))).toBe(false);
    expect(runPassed(run([]))).toBe(false);
  });
});

describe('vitestArguments', () => {
  it('grades the given files with the course reporter and the lesson time limit', () => {
    const args = vitestArguments({ files: ['/x/checks/01-a.test.ts'], targetRoot: '/x/solutions', services: [], timeoutSeconds: 7 });
    expect(args).toContain('--testTimeout=7000');
    expect(args).toContain('--project=checks');
    expect(args.some((a) => a.endsWith('ipc-reporter.ts'))).toBe(true);
  });
});
