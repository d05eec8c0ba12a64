import { ExpectedError } from '../../infra/errors.ts';
import { execFileSync } from 'node:child_process';
import { relative } from 'node:path';
import { REPO_ROOT } from './paths.ts';

function git(args: string[]): string {
  return execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Where pristine starter files come from: the course as it was shipped to this clone, untouched by
 * the learner's own commits. That is the branch this clone tracks; on a branch without one (the
 * learner's own `git checkout -b my-work`), the commit where HEAD left the course's remote branch;
 * with no remote at all, the last commit (and then only uncommitted work can be undone).
 */
export function starterRevision(): string {
  if (verifies('@{upstream}')) return '@{upstream}';
  for (const remote of remoteBranches()) {
    try {
      const base = git(['merge-base', 'HEAD', remote]).trim();
      if (base) return base;
    } catch {
      // unrelated history: try the next one
    }
  }
  if (verifies('HEAD')) return 'HEAD';
  throw new ExpectedError('reset restores starter files from git, and this folder is not a git clone of the course.');
}

/** The course's remote branches, the default one first (origin/HEAD, origin/main). */
function remoteBranches(): string[] {
  let refs: string[];
  try {
    refs = git(['for-each-ref', '--format=%(refname)', 'refs/remotes']).split('\n').filter(Boolean);
  } catch {
    return [];
  }
  const rank = (ref: string) => (ref.endsWith('/HEAD') ? 0 : /\/(main|master)$/.test(ref) ? 1 : 2);
  return refs.sort((a, b) => rank(a) - rank(b));
}

function verifies(revision: string): boolean {
  try {
    git(['rev-parse', '--verify', '--quiet', revision]);
    return true;
  } catch {
    return false;
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

/** Whether git has the file at `revision`. */
export function existsInRevision(revision: string, absolutePath: string): boolean {
  try {
    git(['cat-file', '-e', `${revision}:${relative(REPO_ROOT, absolutePath)}`]);
    return true;
  } catch {
    return false;
  }
}
