import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Fixture, Lesson } from './manifest.ts';
import { STATE_DIR } from './paths.ts';

/**
 * Builds a gradable copy of a known-wrong fixture: the reference solution with the fixture's files
 * laid over it, at `<root>/<slug>/`. Returns the root, ready for COURSE_TARGET_ROOT.
 */
export function materializeFixture(
  lesson: Lesson,
  fixture: Fixture,
  root = join(STATE_DIR, 'targets', `${lesson.slug}--${fixture.name}`),
): string {
  const dir = join(root, lesson.slug);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(lesson.solutionDir, dir, { recursive: true });
  cpSync(fixture.dir, dir, { recursive: true, filter: (source) => !source.endsWith('fixture.json') });
  return root;
}
