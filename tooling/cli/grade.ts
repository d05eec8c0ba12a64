import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs, UsageError } from '../course/args.ts';
import { EXIT, runCommand, usageText } from '../course/cli.ts';
import { loadLessons, type Lesson } from '../course/manifest.ts';
import { LESSONS_DIR, REPO_ROOT, SOLUTIONS_DIR, STATE_DIR } from '../course/paths.ts';
import { runChecks, type CheckRun } from '../course/run-checks.ts';
import { judgeFile } from '../course/verdict.ts';
import { bringUpServices } from '../course/services-ui.ts';
import { bold, dim, green, red, yellow } from '../course/ui.ts';

const USAGE = usageText([
  'Usage: npm run grade [-- --solution]',
  '  Grades every lesson in lessons/ and prints a table of points (one per requirement).',
  '  Writes .course/reports/grade.json and .course/reports/junit.xml for classroom autograders.',
  '  --solution   grade the reference solutions instead',
]);

const REPORTS_DIR = join(STATE_DIR, 'reports');

interface LessonGrade {
  number: string;
  slug: string;
  title: string;
  points: number;
  maxPoints: number;
  /** Every requirement passed (a lesson whose code does not load has not). */
  passed: boolean;
  requirements: Array<{ name: string; state: string; message?: string }>;
  error?: string;
}

function gradeOf(lesson: Lesson, run: CheckRun): LessonGrade {
  const verdict = judgeFile(run, lesson.checkFile, { allowNotGraded: true });
  const requirements = verdict.requirements.map(({ name, state, message }) => ({ name, state: state === 'skipped' ? 'not graded here' : state, message }));
  return {
    number: lesson.number,
    slug: lesson.slug,
    title: lesson.title,
    points: verdict.passed,
    maxPoints: verdict.total - verdict.notGraded,
    passed: verdict.ok,
    requirements,
    error: verdict.loadError ? `does not load: ${verdict.loadError}` : verdict.problem,
  };
}

function printTable(grades: LessonGrade[]): void {
  const titleWidth = Math.max(...grades.map((g) => g.title.length));
  console.log(bold(`\n  ${'#'.padEnd(4)}${'Lesson'.padEnd(titleWidth + 2)}Points`));
  for (const grade of grades) {
    const score = (grade.maxPoints === 0 && grade.error ? '-' : `${grade.points}/${grade.maxPoints}`).padStart(6);
    const color = grade.passed ? green : grade.points > 0 ? yellow : red;
    console.log(`  ${grade.number.padEnd(4)}${grade.title.padEnd(titleWidth + 2)}${color(score)}${grade.error ? dim(`  ${grade.error.split('\n')[0]}`) : ''}`);
  }
  const points = grades.reduce((sum, g) => sum + g.points, 0);
  const max = grades.reduce((sum, g) => sum + g.maxPoints, 0);
  console.log(bold(`  ${''.padEnd(4)}${'Total'.padEnd(titleWidth + 2)}${`${points}/${max}`.padStart(6)}`));
}

async function main(): Promise<number> {
  const { positionals, flags } = parseArgs(process.argv.slice(2), ['solution', 'help']);
  if (flags.has('help')) {
    console.log(USAGE);
    return EXIT.ok;
  }
  if (positionals.length > 0) throw new UsageError(`grade takes no lesson number (it grades all), got "${positionals.join(' ')}"`);

  const lessons = loadLessons();
  const target = flags.has('solution') ? SOLUTIONS_DIR : LESSONS_DIR;
  console.log(bold(`Grading ${lessons.length} lessons in ${relative(REPO_ROOT, target)}/`));
  const services = [...new Set(lessons.flatMap((l) => l.services))];
  await bringUpServices(services);

  mkdirSync(REPORTS_DIR, { recursive: true });
  const junitFile = join(REPORTS_DIR, 'junit.xml');
  let done = 0;
  const run = await runChecks({
    files: lessons.map((l) => l.checkFile),
    targetRoot: target,
    services,
    timeoutSeconds: Math.max(...lessons.map((l) => l.timeoutSeconds)),
    parallel: true,
    junitFile,
    onRequirement: () => {
      done += 1;
      if (process.stdout.isTTY) process.stdout.write(`\r  ${dim(`${done} requirements graded…`)}`);
    },
  });
  if (process.stdout.isTTY) process.stdout.write('\r\x1b[K');

  const grades = lessons.map((lesson) => gradeOf(lesson, run));
  printTable(grades);
  const points = grades.reduce((sum, g) => sum + g.points, 0);
  const maxPoints = grades.reduce((sum, g) => sum + g.maxPoints, 0);
  const jsonFile = join(REPORTS_DIR, 'grade.json');
  const report = { gradedAt: new Date().toISOString(), target: relative(REPO_ROOT, target), points, maxPoints, lessons: grades };
  writeFileSync(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(dim(`\n  Reports: ${relative(REPO_ROOT, jsonFile)}, ${relative(REPO_ROOT, junitFile)}`));
  return grades.every((grade) => grade.passed) ? EXIT.ok : EXIT.failed;
}

runCommand(USAGE, main);
