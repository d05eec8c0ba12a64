import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServiceName } from '../../infra/services.ts';
import { UsageError } from './args.ts';
import type { Lesson } from './manifest.ts';
import { CHECKS_DIR, LESSONS_DIR } from './paths.ts';

/** The per-requirement time limit of a lesson whose lesson.json names none. */
export const DEFAULT_TIMEOUT_SECONDS = 20;

/** Whether a lesson folder is the one asked for, by number ("7", "07") or folder name ("07-kafka-basics"). */
function isLesson(slug: string, input: string): boolean {
  if (/^\d{1,2}$/.test(input)) return slug.startsWith(`${input.padStart(2, '0')}-`);
  return slug === input;
}

/** Finds a lesson by number ("7", "07") or folder name ("07-kafka-basics"). */
export function findLesson(input: string, lessons: readonly Lesson[]): Lesson {
  const lesson = lessons.find((l) => isLesson(l.slug, input));
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
    const slug = readdirSync(LESSONS_DIR).find((name) => isLesson(name, input));
    if (!slug) return undefined;
    const raw = JSON.parse(readFileSync(join(LESSONS_DIR, slug, 'lesson.json'), 'utf8')) as { services?: ServiceName[]; timeoutSeconds?: number };
    return { checkFile: join(CHECKS_DIR, `${slug}.test.ts`), services: raw.services ?? [], timeoutSeconds: raw.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS };
  } catch {
    return undefined;
  }
}
