import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROTOCOL_ENV } from './protocol.ts';

/** The repository root, whatever the current directory is. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export const LESSONS_DIR = join(REPO_ROOT, 'lessons');
export const SOLUTIONS_DIR = join(REPO_ROOT, 'solutions');
export const CHECKS_DIR = join(REPO_ROOT, 'checks');
export const FIXTURES_DIR = join(CHECKS_DIR, 'fixtures');
export const DOCS_DIR = join(REPO_ROOT, 'docs');
/** Git-ignored state: progress, generated grading targets, reports, native service data. */
export const STATE_DIR = join(REPO_ROOT, '.course');

/**
 * The one switch that decides which code the checks grade: a folder holding `NN-slug/` lesson
 * folders. `lessons/` (the learner's work) unless COURSE_TARGET_ROOT names another, such as
 * `solutions/` or a generated folder with a known-wrong fixture.
 */
export function targetRoot(): string {
  const configured = process.env[PROTOCOL_ENV.targetRoot];
  if (!configured) return LESSONS_DIR;
  return isAbsolute(configured) ? configured : resolve(REPO_ROOT, configured);
}
