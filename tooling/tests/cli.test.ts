import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../course/paths.ts';

const progressFile = join(mkdtempSync(join(tmpdir(), 'course-cli-')), 'progress.json');

function run(command: string, ...args: string[]) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', `tooling/cli/${command}.ts`, ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, COURSE_PROGRESS_FILE: progressFile, NO_COLOR: '1' },
    timeout: 30_000,
  });
  return { code: result.status, out: result.stdout, err: result.stderr };
}

const noStackTrace = (text: string) => expect(text).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);

describe('bad input gets a one-line reason, the valid choices and exit code 2', () => {
  it.each([
    ['lesson', ['99'], /no lesson "99" \(valid lessons: 01/],
    ['lesson', ['abc'], /no lesson "abc"/],
    ['lesson', ['01', '--bogus'], /unknown option "--bogus" \(valid options: --watch, --hint, --solution, --help\)/],
    ['lesson', ['01', '02'], /expected one lesson number/],
    ['reset', ['99', '--yes'], /no lesson "99"/],
    ['reset', [], /needs a lesson number/],
    ['grade', ['--bogus'], /unknown option "--bogus"/],
    ['test', ['--bogus'], /unknown option "--bogus"/],
    ['mutate', ['99'], /no lesson "99"/],
    ['mutate', [], /name one lesson/],
  ])('%s %s', (command, args, message) => {
    const { code, err } = run(command, ...args);
    expect(err).toMatch(message);
    expect(err).toMatch(/Usage:/);
    noStackTrace(err);
    expect(code).toBe(2);
  });
});

describe('a service that cannot be reached', () => {
  it('names the service, the address tried and how to fix it, without a stack trace, and exits 1', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'tooling/cli/lesson.ts', '02'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, REDIS_URL: 'redis://127.0.0.1:1', COURSE_PROGRESS_FILE: progressFile, NO_COLOR: '1' },
      timeout: 30_000,
    });
    expect(result.stdout).toMatch(/Redis is not reachable \(tried REDIS_URL=redis:\/\/127\.0\.0\.1:1\)/);
    expect(result.stdout).toMatch(/unset REDIS_URL/);
    noStackTrace(result.stdout + result.stderr);
    expect(result.status).toBe(1);
  });
});

describe('npm run lesson', () => {
  it('lists the lessons with their status and where to continue', () => {
    const { code, out } = run('lesson');
    expect(code).toBe(0);
    expect(out).toMatch(/pending\s+01\s+Signup events/);
    expect(out).toMatch(/Continue with: npm run lesson 01/);
  });

  it('prints usage for --help', () => {
    const { code, out } = run('lesson', '--help');
    expect(code).toBe(0);
    expect(out).toMatch(/--watch/);
  });

  it('shows hints one at a time', () => {
    expect(run('lesson', '01', '--hint').out).toMatch(/hint 1 of \d/);
    expect(run('lesson', '01', '--hint').out).toMatch(/hint 2 of \d/);
  });

  it('fails the starter of lesson 01 with teaching messages and exit code 1', () => {
    const { code, out } = run('lesson', '01');
    expect(out).toMatch(/✗ signup emits exactly one user.signed-up event/);
    expect(out).toMatch(/not written yet: EventBus.on/);
    const [, passed, total] = /(\d+) of (\d+) requirements pass/.exec(out) ?? [];
    expect(Number(passed)).toBe(0);
    expect(Number(total)).toBe(out.match(/✗ /g)?.length);
    expect(code).toBe(1);
  });

  it('passes the reference solution of lesson 01 with exit code 0', () => {
    const { code, out } = run('lesson', '01', '--solution');
    const [, total] = /All (\d+) requirements pass/.exec(out) ?? [];
    expect(Number(total)).toBeGreaterThan(0);
    expect(Number(total)).toBe(out.match(/✓ /g)?.length);
    expect(code).toBe(0);
  });
});

describe('an unexpected error is a bug of the course and shows where it happened', () => {
  it('prints the stack of an internal error, and a one-line reason for an expected one', () => {
    const script = (body: string) =>
      spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', body], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    const internal = script("import { runCommand } from './tooling/course/cli.ts'; runCommand('Usage: x', async () => { throw new TypeError('cannot read x of undefined'); });");
    expect(internal.stderr).toMatch(/internal error/);
    expect(internal.stderr).toMatch(/TypeError: cannot read x of undefined\n\s+at /);
    expect(internal.status).toBe(1);
    const expected = script("import { runCommand } from './tooling/course/cli.ts'; import { ServiceError } from './infra/errors.ts'; runCommand('Usage: x', async () => { throw new ServiceError('Kafka was not ready after 120 s'); });");
    expect(expected.stderr).toMatch(/error: Kafka was not ready after 120 s/);
    noStackTrace(expected.stderr);
    expect(expected.status).toBe(1);
  });
});
