import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { REPO_ROOT } from '../course/paths.ts';
import { teachingMessage, vitestArguments, type CheckRun } from '../course/run-checks.ts';
import { locationInGradedCode } from '../course/todo.ts';
import { judgeFile } from '../course/verdict.ts';

describe('teachingMessage', () => {
  it('turns a vitest timeout into an explanation with the limit', () => {
    const message = teachingMessage('Test timed out in 10000ms.\nIf this is a long-running test…', 10);
    expect(message).toMatch(/did not finish within 10 s/);
    expect(message).toMatch(/never settles/);
  });

  it('explains vi.waitFor giving up on an attempt that never finished', () => {
    expect(teachingMessage('Timed out in waitFor!', 10)).toMatch(/^gave up waiting: one attempt of what this requirement polls/);
  });

  it('says plainly that a TODO is still a TODO', () => {
    expect(teachingMessage('TODO: EventBus.on', 10)).toBe('not written yet: EventBus.on still throws its TODO.');
  });

  it('drops colour codes and vitest\'s assertion tail from a teaching message', () => {
    expect(teachingMessage('\u001b[31mthe queue should be durable: expected false to be true // Object.is equality\u001b[39m', 10))
      .toBe('the queue should be durable: expected false to be true');
  });

  it('says where a TODO is thrown, so a learner opens the right file', () => {
    expect(teachingMessage('TODO: EventBus.on', 10, 'lessons/01-signup-events/event-bus.ts:29'))
      .toBe('not written yet: EventBus.on still throws its TODO (lessons/01-signup-events/event-bus.ts:29).');
    expect(teachingMessage('TODO: ensureGroup (lessons/03-redis-streams/consumer.ts:112)', 10))
      .toBe('not written yet: ensureGroup still throws its TODO (lessons/03-redis-streams/consumer.ts:112).');
  });

  it('finds the first frame in the graded folder, not in the check or a library', () => {
    const stack = [
      'Error: TODO: EventBus.on',
      `    at EventBus.on (file://${REPO_ROOT}/lessons/01-signup-events/event-bus.ts:29:11)`,
      `    at ${REPO_ROOT}/checks/01-signup-events.test.ts:120:9`,
    ].join('\n');
    expect(locationInGradedCode(stack, join(REPO_ROOT, 'lessons'))).toBe('lessons/01-signup-events/event-bus.ts:29');
    expect(locationInGradedCode(stack, join(REPO_ROOT, 'solutions'))).toBeUndefined();
  });

  it('keeps a check’s own message as it is', () => {
    expect(teachingMessage('  expected one event, saw 2  ', 10)).toBe('expected one event, saw 2');
  });
});

describe('the verdict', () => {
  const checkFile = join(REPO_ROOT, 'checks/x.test.ts');
  const run = (states: Array<'passed' | 'failed' | 'skipped'>, extra: Partial<CheckRun> = {}, loadError?: string): CheckRun => ({
    files: [{ file: 'checks/x.test.ts', loadError, requirements: states.map((state, i) => ({ file: 'checks/x.test.ts', name: `r${i}`, state, durationMs: 1 })) }],
    unhandledErrors: [],
    endpoints: [],
    collected: {},
    ...extra,
  });

  it('counts passed, failed and not graded requirements', () => {
    const verdict = judgeFile(run(['passed', 'failed', 'passed', 'skipped']), checkFile);
    expect([verdict.passed, verdict.failed, verdict.notGraded, verdict.total]).toEqual([2, 1, 1, 4]);
  });

  it('passes only when every requirement passed and nothing escaped', () => {
    expect(judgeFile(run(['passed', 'passed']), checkFile).ok).toBe(true);
    expect(judgeFile(run(['passed', 'failed']), checkFile).ok).toBe(false);
    expect(judgeFile(run(['passed'], { unhandledErrors: ['boom'] }), checkFile).ok).toBe(false);
    expect(judgeFile(run(['passed'], { fatal: 'cut short' }), checkFile).ok).toBe(false);
    expect(judgeFile(run([]), checkFile).ok).toBe(false);
  });

  it('never passes code that does not load, and says so', () => {
    const verdict = judgeFile(run([], {}, 'SyntaxError: Unexpected token (worker.ts:3:5)'), checkFile);
    expect(verdict.ok).toBe(false);
    expect(verdict.loadError).toMatch(/worker\.ts:3:5/);
    expect(judgeFile({ files: [], unhandledErrors: [], endpoints: [], collected: {} }, checkFile).problem).toBe('no requirement ran');
  });

  it('accepts requirements not graded here only where asked (a learner, never a proof)', () => {
    expect(judgeFile(run(['passed', 'skipped']), checkFile).ok).toBe(false);
    expect(judgeFile(run(['passed', 'skipped']), checkFile, { allowNotGraded: true }).ok).toBe(true);
    expect(judgeFile(run(['skipped']), checkFile, { allowNotGraded: true }).ok).toBe(false);
  });
});

describe('vitestArguments', () => {
  it('grades the given files with the course reporter and the lesson time limit', () => {
    const args = vitestArguments({ files: ['/x/checks/01-a.test.ts'], targetRoot: '/x/solutions', services: [], timeoutSeconds: 7 });
    expect(args).toContain('--testTimeout=7000');
    expect(args).toContain('--project=checks');
    expect(args.some((a) => a.endsWith('ipc-reporter.ts'))).toBe(true);
  });

  it('runs only the named requirements, their names matched literally', () => {
    const only = ['a job (any job) is acked once', 'x.y* [z]'];
    const args = vitestArguments({ files: [], targetRoot: '/x', services: [], timeoutSeconds: 1, only });
    const pattern = new RegExp(args.find((a) => a.startsWith('--testNamePattern='))!.slice('--testNamePattern='.length));
    expect(pattern.test('05 work queues a job (any job) is acked once')).toBe(true);
    expect(pattern.test('x.y* [z]')).toBe(true);
    expect(pattern.test('a job any job is acked once')).toBe(false);
    expect(pattern.test('xay')).toBe(false);
  });
});
