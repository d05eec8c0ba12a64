import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../course/paths.ts';

describe('npm run reset', () => {
  it('restores the starter files of a lesson from git, with --yes instead of the question', () => {
    const clone = join(mkdtempSync(join(tmpdir(), 'course-reset-')), 'course');
    execFileSync('git', ['clone', '--quiet', REPO_ROOT, clone]);
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(clone, 'node_modules'));
    const file = join(clone, 'lessons/01-signup-events/user-service.ts');
    const starter = readFileSync(file, 'utf8');
    writeFileSync(file, '// my attempt\n');

    const result = spawnSync(process.execPath, ['--import', 'tsx', 'tooling/cli/reset.ts', '01', '--yes'], {
      cwd: clone,
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', COURSE_PROGRESS_FILE: join(clone, '.course/progress.json') },
    });

    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/Restored from @\{upstream\}/);
    expect(result.status).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(starter);
  });

  it('refuses to reset without a terminal to confirm in, unless --yes is given', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'tooling/cli/reset.ts', '01'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      input: '',
      env: { ...process.env, NO_COLOR: '1' },
    });
    expect(result.stderr).toMatch(/needs a confirmation: run it in a terminal, or add --yes/);
    expect(result.status).toBe(2);
  });
});

describe('npm run reset after the learner committed', () => {
  it('restores the starter as the course shipped it, not the learner\'s commit on a branch without upstream', () => {
    const clone = join(mkdtempSync(join(tmpdir(), 'course-reset-')), 'course');
    execFileSync('git', ['clone', '--quiet', REPO_ROOT, clone]);
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(clone, 'node_modules'));
    const file = join(clone, 'lessons/01-signup-events/user-service.ts');
    const starter = readFileSync(file, 'utf8');
    const inClone = (...args: string[]) => execFileSync('git', args, { cwd: clone, stdio: 'ignore' });
    inClone('checkout', '--quiet', '-b', 'my-work');
    writeFileSync(file, '// my committed attempt\n');
    inClone('-c', 'user.name=Learner', '-c', 'user.email=learner@example.com', 'commit', '--quiet', '-am', 'my attempt');

    const result = spawnSync(process.execPath, ['--import', 'tsx', 'tooling/cli/reset.ts', '01', '--yes'], {
      cwd: clone,
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', COURSE_PROGRESS_FILE: join(clone, '.course/progress.json') },
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(readFileSync(file, 'utf8'), 'the shipped starter, not the learner\'s commit').toBe(starter);
  });
});
