import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { z } from 'zod';
import { SERVICE_NAMES } from '../../infra/services.ts';
import { ManifestError } from './errors.ts';
import { DEFAULT_TIMEOUT_SECONDS } from './lookup.ts';
import { CHECKS_DIR, DOCS_DIR, FIXTURES_DIR, LESSONS_DIR, REPO_ROOT, SOLUTIONS_DIR } from './paths.ts';

/** `lessons/NN-slug/lesson.json`: what the runner needs to present and grade a lesson. */
export const LessonManifestSchema = z.strictObject({
  title: z.string().min(1),
  /** One or two sentences: what the learner builds and why it matters. */
  goal: z.string().min(1),
  services: z.array(z.enum(SERVICE_NAMES)),
  /** The files the learner edits, relative to the lesson folder; `reset` restores exactly these. */
  files: z.array(z.string().min(1)).min(1),
  /** Progressive hints, from a nudge to nearly the answer. */
  hints: z.array(z.string().min(1)).min(3),
  /**
   * Given files that are another lesson's file byte for byte (each lesson folder is self-contained,
   * so learners never chase imports into another lesson): file name → the lesson whose solution has it.
   */
  sameAs: z.record(z.string().min(1), z.string().regex(/^\d{2}-[a-z0-9-]+$/)).default({}),
  /** Per-requirement time limit; a hanging requirement fails with a message after this. */
  timeoutSeconds: z.number().int().positive().max(300).default(DEFAULT_TIMEOUT_SECONDS),
});

/**
 * `checks/fixtures/NN-slug/<name>/fixture.json`: a plausible wrong solution the checks must reject.
 * Beside it, `*.patch` files (unified diffs against the reference solution) make the mistake.
 */
export const FixtureManifestSchema = z.strictObject({
  /** The mistake, as a learner would make it. */
  mistake: z.string().min(1),
  /** Requirement (test) names that must fail for this fixture; each an exact test name. */
  mustFail: z.array(z.string().min(1)).min(1),
});

export type LessonManifest = z.infer<typeof LessonManifestSchema>;
export type FixtureManifest = z.infer<typeof FixtureManifestSchema>;

export { ManifestError };

export interface Fixture extends FixtureManifest {
  name: string;
  dir: string;
}

export interface Lesson extends LessonManifest {
  /** "07" */
  number: string;
  /** "07-kafka-basics" */
  slug: string;
  lessonDir: string;
  solutionDir: string;
  checkFile: string;
  docFile: string;
}

const LESSON_DIR_PATTERN = /^(\d{2})-[a-z0-9-]+$/;

function readJson<T>(file: string, schema: z.ZodType<T>): T {
  if (!existsSync(file)) throw new ManifestError(`${relative(REPO_ROOT, file)} is missing`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ManifestError(`${relative(REPO_ROOT, file)} is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new ManifestError(`${relative(REPO_ROOT, file)} is invalid:\n${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

export function loadLesson(slug: string): Lesson {
  const match = LESSON_DIR_PATTERN.exec(slug);
  if (!match) throw new ManifestError(`"${slug}" is not a lesson folder name (expected NN-slug)`);
  const lessonDir = join(LESSONS_DIR, slug);
  const manifest = readJson(join(lessonDir, 'lesson.json'), LessonManifestSchema);
  return {
    ...manifest,
    number: match[1]!,
    slug,
    lessonDir,
    solutionDir: join(SOLUTIONS_DIR, slug),
    checkFile: join(CHECKS_DIR, `${slug}.test.ts`),
    docFile: join(DOCS_DIR, `${slug}.md`),
  };
}

/** Every lesson in `lessons/`, in course order. */
export function loadLessons(): Lesson[] {
  return readdirSync(LESSONS_DIR, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && LESSON_DIR_PATTERN.test(entry.name))
    .map((entry) => entry.name)
    .sort()
    .map(loadLesson);
}

export function loadFixtures(lesson: Lesson): Fixture[] {
  const dir = join(FIXTURES_DIR, lesson.slug);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .map((name) => ({
      name,
      dir: join(dir, name),
      ...readJson(join(dir, name, 'fixture.json'), FixtureManifestSchema),
    }));
}
