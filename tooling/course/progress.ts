import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { STATE_DIR } from './paths.ts';

const LessonProgressSchema = z.object({
  /** ISO time of the first all-green run, absent while pending. */
  passedAt: z.string().optional(),
  /** How many hints the learner has been shown. */
  hintsShown: z.number().int().nonnegative().default(0),
  lastRunAt: z.string().optional(),
  /** The latest run; `complete: false` after a lesson that was done fails again. */
  lastResult: z.object({ passed: z.number(), total: z.number(), complete: z.boolean().optional() }).optional(),
});

const ProgressSchema = z.object({
  version: z.literal(1),
  lessons: z.record(z.string(), LessonProgressSchema),
});

export type LessonProgress = z.infer<typeof LessonProgressSchema>;
export type Progress = z.infer<typeof ProgressSchema>;

/** COURSE_PROGRESS_FILE moves it, e.g. for tests or a shared classroom machine. */
export const DEFAULT_PROGRESS_FILE = process.env.COURSE_PROGRESS_FILE ?? join(STATE_DIR, 'progress.json');

/**
 * The learner's progress, keyed by lesson number. A missing or unreadable file means a fresh start:
 * progress is a convenience and must never stop anyone from working.
 */
export class ProgressStore {
  constructor(private readonly file: string = DEFAULT_PROGRESS_FILE) {}

  read(): Progress {
    try {
      const parsed = ProgressSchema.safeParse(JSON.parse(readFileSync(this.file, 'utf8')));
      if (parsed.success) return parsed.data;
    } catch {
      // fall through to a fresh start
    }
    return { version: 1, lessons: {} };
  }

  lesson(number: string): LessonProgress {
    return this.read().lessons[number] ?? { hintsShown: 0 };
  }

  update(number: string, change: (current: LessonProgress) => LessonProgress): LessonProgress {
    const progress = this.read();
    const next = change(progress.lessons[number] ?? { hintsShown: 0 });
    progress.lessons[number] = next;
    this.write(progress);
    return next;
  }

  /** Records a graded run; `complete` (every requirement passed, nothing else failed) marks the lesson done. */
  recordRun(number: string, result: { passed: number; total: number; complete: boolean }, now = new Date()): LessonProgress {
    return this.update(number, (current) => ({
      ...current,
      lastRunAt: now.toISOString(),
      lastResult: { passed: result.passed, total: result.total, complete: result.complete },
      passedAt: current.passedAt ?? (result.complete ? now.toISOString() : undefined),
    }));
  }

  /** Returns the index of the hint to show now (0-based), advancing the counter up to the last one. */
  nextHint(number: string, hintCount: number): number {
    const shown = this.lesson(number).hintsShown;
    const index = Math.min(shown, hintCount - 1);
    this.update(number, (current) => ({ ...current, hintsShown: Math.min(shown + 1, hintCount) }));
    return index;
  }

  forget(number: string): void {
    const progress = this.read();
    delete progress.lessons[number];
    this.write(progress);
  }

  private write(progress: Progress): void {
    mkdirSync(dirname(this.file), { recursive: true });
    // Write then rename, so an interrupted run never leaves half a file behind.
    const temporary = `${this.file}.${process.pid}.tmp`;
    writeFileSync(temporary, `${JSON.stringify(progress, null, 2)}\n`);
    renameSync(temporary, this.file);
  }
}
