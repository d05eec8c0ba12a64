import { join } from 'node:path';
import { targetRoot } from '../../tooling/course/paths.ts';

/** The absolute path of a file of the code under test (learner, solution or fixture). */
export function lessonFile(slug: string, file: string): string {
  return join(targetRoot(), slug, file);
}
