import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { applyPatch, parsePatch } from 'diff';
import { ManifestError } from './errors.ts';
import type { Fixture, Lesson } from './manifest.ts';
import { REPO_ROOT, STATE_DIR } from './paths.ts';

/** The `*.patch` files of a fixture: unified diffs against the reference solution. */
export function fixturePatches(fixture: Fixture): string[] {
  return readdirSync(fixture.dir)
    .filter((name) => name.endsWith('.patch'))
    .sort()
    .map((name) => join(fixture.dir, name));
}

/** A file name from a patch header: "a/worker.ts" → "worker.ts". */
function patchedPath(name: string | undefined): string | undefined {
  if (!name || name === '/dev/null') return undefined;
  return name.replace(/^[ab]\//, '');
}

/**
 * Builds a gradable copy of a known-wrong fixture: the reference solution with the fixture's patches
 * applied, at `<root>/<slug>/`. Returns the root, ready for COURSE_TARGET_ROOT. A patch that no longer
 * applies (the solution changed under it) is an error, never a silently different fixture.
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

  for (const patchFile of fixturePatches(fixture)) {
    for (const filePatch of parsePatch(readFileSync(patchFile, 'utf8'))) {
      const target = patchedPath(filePatch.newFileName) ?? patchedPath(filePatch.oldFileName);
      if (!target) throw new ManifestError(`${relative(REPO_ROOT, patchFile)} has a file patch without a file name`);
      const file = join(dir, target);
      const original = existsSync(file) ? readFileSync(file, 'utf8') : '';
      const patched = applyPatch(original, filePatch);
      if (patched === false) {
        throw new ManifestError(
          `${relative(REPO_ROOT, patchFile)} no longer applies to solutions/${lesson.slug}/${target}: ` +
            'update the patch to the current solution',
        );
      }
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, patched);
    }
  }
  return root;
}
