import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { REPO_ROOT } from '../course/paths.ts';
import { runEveryFile } from '../course/proofs.ts';
import { runChecks } from '../course/run-checks.ts';

/** Alive and not a zombie (a killed process waits for its new parent to reap it). */
function isAlive(pid: number): boolean {
  try {
    if (existsSync('/proc')) return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('a run with hanging requirements', () => {
  it('ends in bounded time, names each hung requirement, and leaves nothing running', async () => {
    const sleeperFile = join(mkdtempSync(join(tmpdir(), 'course-hang-')), 'pids');
    process.env.HANG_SLEEPER_FILE = sleeperFile;
    const started = Date.now();

    const run = await runChecks({
      files: [join(REPO_ROOT, 'tooling/tests/runner-fixtures/hang.check.ts')],
      project: 'runner-fixtures',
      targetRoot: join(REPO_ROOT, 'solutions'),
      services: [],
      timeoutSeconds: 1,
    });

    expect(Date.now() - started).toBeLessThan(25_000);
    const byName = new Map(run.files.flatMap((f) => f.requirements).map((r) => [r.name, r]));
    expect(byName.get('waits for a promise that never settles')).toMatchObject({ state: 'failed', message: expect.stringMatching(/did not finish within 1 s/) });
    expect(byName.get('fails with a message')).toMatchObject({ state: 'failed', message: expect.stringMatching(/one is not two/) });
    expect(byName.get('blocks its process in a busy loop')).toMatchObject({ state: 'failed', message: expect.stringMatching(/blocked its process/) });
    expect(run.fatal).toMatch(/blocks its process in a busy loop/);

    expect(existsSync(sleeperFile)).toBe(true);
    const sleeper = Number(readFileSync(sleeperFile, 'utf8').trim());
    await vi.waitFor(() => expect(isAlive(sleeper), 'the process started by the hung requirement is still running').toBe(false), {
      timeout: 3_000,
    });
  }, 40_000);

  it('runs again, on its own, a file that another file\'s hang cut short', async () => {
    process.env.HANG_SLEEPER_FILE = join(mkdtempSync(join(tmpdir(), 'course-hang-')), 'pids');
    const neighbour = 'tooling/tests/runner-fixtures/slow-neighbour.check.ts';
    const run = await runEveryFile({
      files: [join(REPO_ROOT, 'tooling/tests/runner-fixtures/hang.check.ts'), join(REPO_ROOT, neighbour)],
      project: 'runner-fixtures',
      targetRoot: join(REPO_ROOT, 'solutions'),
      services: [],
      timeoutSeconds: 1,
      parallel: true,
    });

    expect(run.hung?.name).toBe('blocks its process in a busy loop');
    const results = run.files.find((file) => file.file === neighbour)?.requirements.map((r) => `${r.name}: ${r.state}`);
    expect(results?.sort()).toEqual(['passes after a while: passed', 'passes after another while: passed']);
  }, 60_000);
});
