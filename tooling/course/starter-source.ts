import { ExpectedError } from '../../infra/errors.ts';
import { execFileSync } from 'node:child_process';
import { relative } from 'node:path';
import { REPO_ROOT } from './paths.ts';

function git(args: string[]): string {
  return execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Where pristine starter files come from: the branch this clone tracks (the course as published,
 * untouched by the learner's own commits), or the last commit when nothing is tracked.
 */
export function starterRevision(): string {
  try {
    git(['rev-parse', '--verify', '--quiet', '@{upstream}']);
    return '@{upstream}';
  } catch {
    try {
      git(['rev-parse', '--verify', '--quiet', 'HEAD']);
      return 'HEAD';
    } catch {
      throw new ExpectedError('reset restores starter files from git, and this folder is not a git clone of the course.');
    }
  }
}

/** The starter version of a file, as committed at `revision`. */
export function starterContent(revision: string, absolutePath: string): Buffer {
  const path = relative(REPO_ROOT, absolutePath);
  try {
    return execFileSync('git', ['show', `${revision}:${path}`], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    throw new ExpectedError(`git has no starter version of ${path} at ${revision}.`);
  }
}
