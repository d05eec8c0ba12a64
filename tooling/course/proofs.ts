import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Fixture, Lesson } from './manifest.ts';
import { loadFixtures } from './manifest.ts';
import { LESSONS_DIR, REPO_ROOT, SOLUTIONS_DIR, STATE_DIR } from './paths.ts';
import { fileResult, runChecks, type CheckRun, type FileResult, type RequirementResult, type RunChecksOptions } from './run-checks.ts';
import { judgeFile } from './verdict.ts';
import { existsInRevision, starterContent, starterRevision } from './starter-source.ts';
import { materializeFixture } from './targets.ts';

/** One thing `npm test` proves, e.g. "lesson 03: the starter fails its checks". */
export interface Proof {
  group: string;
  name: string;
  ok: boolean;
  detail?: string;
}

const FIXTURE_ROUNDS_DIR = join(STATE_DIR, 'targets', 'rounds');

function describeFailures(requirements: RequirementResult[]): string {
  return requirements
    .filter((r) => r.state !== 'passed')
    .map((r) => `"${r.name}": ${r.state === 'skipped' ? `not graded here: ${r.message ?? 'skipped'}` : (r.message ?? r.state)}`)
    .join('\n');
}

function timeoutFor(lessons: readonly Lesson[]): number {
  return Math.max(...lessons.map((lesson) => lesson.timeoutSeconds));
}

function servicesOf(lessons: readonly Lesson[]) {
  return [...new Set(lessons.flatMap((lesson) => lesson.services))];
}

/**
 * Runs check files together. A requirement that hangs ends the whole test process, which would
 * leave the other files of the run without their results: those are run again, without the file
 * that hung, so one lesson's hang never counts against another.
 */
export async function runEveryFile(options: RunChecksOptions): Promise<CheckRun> {
  const run = await runChecks(options);
  if (!run.hung) return run;
  const hungFile = run.hung.file;
  const cutShort = options.files.filter((file) => {
    const path = relative(REPO_ROOT, file);
    if (path === hungFile) return false;
    const result = fileResult(run, join(REPO_ROOT, path));
    if (result?.loadError) return false;
    const collected = run.collected[path];
    return !result || collected === undefined || result.requirements.length < collected;
  });
  if (cutShort.length === 0) return run;
  const again = await runEveryFile({ ...options, files: cutShort });
  const rerun = new Set(cutShort.map((file) => relative(REPO_ROOT, file)));
  return {
    ...run,
    files: [...run.files.filter((file) => !rerun.has(file.file)), ...again.files],
    unhandledErrors: [...run.unhandledErrors, ...again.unhandledErrors],
    fatal: [run.fatal, again.fatal].filter(Boolean).join('; ') || undefined,
    endpoints: [...run.endpoints, ...again.endpoints],
    collected: { ...run.collected, ...again.collected },
  };
}

/** The reference solution of every lesson passes every requirement. */
export async function proveSolutions(lessons: Lesson[]): Promise<{ proofs: Proof[]; names: Map<string, Set<string>> }> {
  const run = await runEveryFile({
    files: lessons.map((l) => l.checkFile),
    targetRoot: SOLUTIONS_DIR,
    services: servicesOf(lessons),
    timeoutSeconds: timeoutFor(lessons),
    parallel: true,
  });
  const names = new Map<string, Set<string>>();
  const proofs = lessons.map((lesson): Proof => {
    const verdict = judgeFile(run, lesson.checkFile);
    names.set(lesson.slug, new Set(verdict.requirements.map((r) => r.name)));
    return {
      group: `lesson ${lesson.number}`,
      name: `the solution passes all ${verdict.total} requirements`,
      ok: verdict.ok,
      detail: verdict.ok ? undefined : (verdict.problem ?? describeFailures(verdict.requirements)),
    };
  });
  if (run.unhandledErrors.length > 0) {
    proofs.push({ group: 'solutions', name: 'no error escapes the requirements', ok: false, detail: run.unhandledErrors.join('\n') });
  }
  return { proofs, names };
}

/**
 * The starters as the course ships them: `lessons/` with every file the learner edits taken from
 * git's shipped revision, so that a checkout where the learner has solved lessons still proves the
 * starters (and not the learner's work). Outside a git checkout, `lessons/` as it is.
 */
function shippedStarters(lessons: Lesson[]): string {
  let revision: string;
  try {
    revision = starterRevision();
  } catch {
    return LESSONS_DIR;
  }
  const root = join(STATE_DIR, 'targets', 'starters');
  rmSync(root, { recursive: true, force: true });
  for (const lesson of lessons) {
    const dir = join(root, lesson.slug);
    cpSync(lesson.lessonDir, dir, { recursive: true });
    for (const file of lesson.files) {
      const path = join(lesson.lessonDir, file);
      // A lesson being written is not in git yet: its starter is the working copy.
      if (existsInRevision(revision, path)) writeFileSync(join(dir, file), starterContent(revision, path));
    }
  }
  return root;
}

/** Every starter, as shipped, runs its checks (it loads) and fails at least one requirement. */
export async function proveStarters(lessons: Lesson[]): Promise<Proof[]> {
  const run = await runEveryFile({
    files: lessons.map((l) => l.checkFile),
    targetRoot: shippedStarters(lessons),
    services: servicesOf(lessons),
    timeoutSeconds: timeoutFor(lessons),
    parallel: true,
  });
  return lessons.map((lesson): Proof => {
    const file = fileResult(run, lesson.checkFile);
    const requirements = file?.requirements ?? [];
    const failed = requirements.filter((r) => r.state === 'failed').length;
    const ok = requirements.length > 0 && failed > 0 && !file?.loadError;
    return {
      group: `lesson ${lesson.number}`,
      name: `the starter fails ${failed} of ${requirements.length} requirements`,
      ok,
      detail: ok
        ? undefined
        : (file?.loadError ?? run.fatal ?? (requirements.length === 0 ? 'no requirement ran' : 'the starter passes every requirement')),
    };
  });
}

/**
 * Every known-wrong fixture fails the requirements it names. Fixtures are graded in rounds: round k
 * holds the k-th fixture of every lesson, so one vitest run grades many lessons at once.
 */
export async function proveFixtures(lessons: Lesson[], requirementNames: Map<string, Set<string>>): Promise<Proof[]> {
  const byLesson = lessons.map((lesson) => ({ lesson, fixtures: loadFixtures(lesson) }));
  const rounds = Math.max(0, ...byLesson.map((entry) => entry.fixtures.length));
  const proofs: Proof[] = [];
  rmSync(FIXTURE_ROUNDS_DIR, { recursive: true, force: true });

  for (let round = 0; round < rounds; round++) {
    const entries = byLesson.flatMap(({ lesson, fixtures }) => (fixtures[round] ? [{ lesson, fixture: fixtures[round]! }] : []));
    const root = join(FIXTURE_ROUNDS_DIR, String(round));
    for (const { lesson, fixture } of entries) materializeFixture(lesson, fixture, root);
    const roundLessons = entries.map((entry) => entry.lesson);
    const run = await runEveryFile({
      files: roundLessons.map((l) => l.checkFile),
      targetRoot: root,
      services: servicesOf(roundLessons),
      timeoutSeconds: timeoutFor(roundLessons),
      parallel: true,
      // A fixture proves what it claims by failing the requirements it names: the others need not run.
      only: entries.flatMap((entry) => entry.fixture.mustFail),
    });
    for (const { lesson, fixture } of entries) proofs.push(judgeFixture(lesson, fixture, fileResult(run, lesson.checkFile), requirementNames, run.fatal));
  }
  return proofs;
}

function judgeFixture(lesson: Lesson, fixture: Fixture, file: FileResult | undefined, names: Map<string, Set<string>>, fatal?: string): Proof {
  const proof = { group: `lesson ${lesson.number}`, name: `the known-wrong fixture "${fixture.name}" fails` };
  const known = names.get(lesson.slug) ?? new Set<string>();
  const unknown = fixture.mustFail.filter((name) => !known.has(name));
  if (unknown.length > 0) return { ...proof, ok: false, detail: `fixture.json names requirements the check does not have: ${unknown.join('; ')}` };
  if (!file || file.loadError) {
    return { ...proof, ok: false, detail: `the fixture did not load, so it proves nothing: ${file?.loadError ?? `no result${fatal ? ` (${fatal})` : ''}`}` };
  }
  const stateOf = (name: string) => file.requirements.find((r) => r.name === name)?.state;
  const passing = fixture.mustFail.filter((name) => stateOf(name) === 'passed');
  const missing = fixture.mustFail.filter((name) => stateOf(name) === undefined || stateOf(name) === 'skipped');
  if (passing.length > 0) return { ...proof, ok: false, detail: `these requirements passed, so the check misses the mistake: ${passing.join('; ')}` };
  if (missing.length > 0) return { ...proof, ok: false, detail: `no result for: ${missing.join('; ')}${fatal ? ` (${fatal})` : ''}` };
  return { ...proof, ok: true };
}

/**
 * For every lesson with several files to edit: the reference solution with exactly one of them put
 * back to its starter fails, and every failing requirement's message names that file (it may name
 * others too, where a requirement honestly spans two). Graded in rounds, like the fixtures: round k
 * reverts the k-th file of every lesson.
 */
export async function proveMessagesNameTheFile(lessons: Lesson[]): Promise<Proof[]> {
  const candidates = lessons.filter((lesson) => lesson.files.length > 1);
  const rounds = Math.max(0, ...candidates.map((lesson) => lesson.files.length));
  const proofs: Proof[] = [];
  const roundsDir = join(STATE_DIR, 'targets', 'one-unsolved');
  rmSync(roundsDir, { recursive: true, force: true });
  for (let round = 0; round < rounds; round++) {
    const entries = candidates.flatMap((lesson) => (lesson.files[round] ? [{ lesson, file: lesson.files[round]! }] : []));
    const root = join(roundsDir, String(round));
    for (const { lesson, file } of entries) {
      const dir = join(root, lesson.slug);
      cpSync(lesson.solutionDir, dir, { recursive: true });
      cpSync(join(lesson.lessonDir, file), join(dir, file));
    }
    const roundLessons = entries.map((entry) => entry.lesson);
    const run = await runEveryFile({
      files: roundLessons.map((l) => l.checkFile),
      targetRoot: root,
      services: servicesOf(roundLessons),
      timeoutSeconds: timeoutFor(roundLessons),
      parallel: true,
    });
    for (const { lesson, file } of entries) {
      const verdict = judgeFile(run, lesson.checkFile);
      const name = { group: `lesson ${lesson.number}`, name: `with only ${file} unsolved, every failure names ${file}` };
      const failed = verdict.requirements.filter((r) => r.state === 'failed');
      const silent = failed.filter((r) => !(r.message ?? '').includes(file));
      if (verdict.loadError) proofs.push({ ...name, ok: false, detail: `did not load: ${verdict.loadError}` });
      else if (failed.length === 0) proofs.push({ ...name, ok: false, detail: `nothing failed: the checks do not notice that ${file} is unsolved` });
      else if (silent.length > 0) proofs.push({ ...name, ok: false, detail: silent.map((r) => `"${r.name}" says: ${firstLines(r.message ?? '', 12)}`).join('\n') });
      else proofs.push({ ...name, ok: true });
    }
  }
  return proofs;
}

/** The start of a failure message: enough to show what differed, not a whole process log. */
function firstLines(message: string, count: number): string {
  const lines = message.split('\n');
  return lines.slice(0, count).join('\n') + (lines.length > count ? `\n… (${lines.length - count} more lines)` : '');
}

/** A tsconfig covering every materialized fixture, so `tsc` proves each one type-checks over its solution. */
export function writeFixtureTsconfig(lessons: Lesson[]): string {
  const root = join(STATE_DIR, 'targets', 'typecheck');
  rmSync(root, { recursive: true, force: true });
  for (const lesson of lessons) {
    for (const fixture of loadFixtures(lesson)) materializeFixture(lesson, fixture, join(root, fixture.name));
  }
  mkdirSync(root, { recursive: true });
  const config = join(root, 'tsconfig.json');
  writeFileSync(config, JSON.stringify({ extends: '../../../tsconfig.json', include: ['./**/*.ts'], exclude: [] }, null, 2));
  return config;
}
