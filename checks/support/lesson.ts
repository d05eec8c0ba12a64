import { join, relative } from 'node:path';
import { REPO_ROOT, targetRoot } from '../../tooling/course/paths.ts';

/** The absolute path of a file of the code under test (learner, solution or fixture). */
export function lessonFile(slug: string, file: string): string {
  return join(targetRoot(), slug, file);
}

/**
 * The folder being graded, as messages should name it: `lessons/07-kafka-basics` for the learner's
 * work, `solutions/07-kafka-basics` under --solution, the generated folder of a fixture otherwise.
 * Messages end with `(${gradedFolder(SLUG)}/file.ts)` so they point at the file that is wrong.
 */
export function gradedFolder(slug: string): string {
  const folder = join(targetRoot(), slug);
  const rel = relative(REPO_ROOT, folder);
  return rel && !rel.startsWith('..') ? rel : folder;
}
