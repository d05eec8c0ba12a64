import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Fixture, Lesson } from './manifest.ts';
import { STATE_DIR } from './paths.ts';

const TARGETS_DIR = join(STATE_DIR, 'targets');

/**
 * Builds a gradable copy of a known-wrong fixture: the reference solution with the fixture's
 * files laid over it. Returns a target root (a folder holding `<slug>/`) for COURSE_TARGET_ROOT.
 */
export function materializeFixture(lesson: Lesson, fixture: Fixture): string {
  const root = join(TARGETS_DIR, `${lesson.slug}--${fixture.name}`);
  const dir = join(root, lesson.slug);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(lesson.solutionDir, dir, { recursive: true });
  cpSync(fixture.dir, dir, { recursive: true, filter: (source) => !source.endsWith('fixture.json') });
  return root;
}
