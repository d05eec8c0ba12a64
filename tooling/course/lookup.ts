import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServiceName } from '../../infra/services.ts';
import { UsageError } from './args.ts';
import type { Lesson } from './manifest.ts';
import { CHECKS_DIR, LESSONS_DIR } from './paths.ts';

/** Finds a lesson by number ("7", "07") or folder name ("07-kafka-basics"). */
export function findLesson(input: string, lessons: readonly Lesson[]): Lesson {
  const wanted = /^\d{1,2}$/.test(input) ? input.padStart(2, '0') : input;
  const lesson = lessons.find((l) => l.number === wanted || l.slug === wanted);
  if (!lesson) {
    const valid = lessons.map((l) => l.number).join(', ');
    throw new UsageError(`there is no lesson "${input}" (valid lessons: ${valid})`);
  }
  return lesson;
}

/**
 * What grading needs, read without validation so the checks can start at once. Undefined when the
 * input is not an exact lesson: the validated path then reports the problem properly.
 */
export function peekLesson(input: string): { checkFile: string; services: ServiceName[]; timeoutSeconds: number } | undefined {
  try {
    const wanted = /^\d{1,2}$/.test(input) ? input.padStart(2, '0') : input;
    const slug = readdirSync(LESSONS_DIR).find((name) => name === wanted || name.startsWith(`${wanted}-`));
    if (!slug) return undefined;
    const raw = JSON.parse(readFileSync(join(LESSONS_DIR, slug, 'lesson.json'), 'utf8')) as { services?: ServiceName[]; timeoutSeconds?: number };
    return { checkFile: join(CHECKS_DIR, `${slug}.test.ts`), services: raw.services ?? [], timeoutSeconds: raw.timeoutSeconds ?? 20 };
  } catch {
    return undefined;
  }
}
