import { basename, relative } from 'node:path';
import { parseArgs, UsageError } from '../course/args.ts';
import { EXIT, runCommand, usageText } from '../course/cli.ts';
import { findLesson, peekLesson } from '../course/lookup.ts';
import type { Lesson } from '../course/manifest.ts';
import { REPO_ROOT, SOLUTIONS_DIR, LESSONS_DIR } from '../course/paths.ts';
import type { ProgressStore } from '../course/progress.ts';
import { runChecks, type CheckRun, type RequirementResult } from '../course/run-checks.ts';
import { judgeFile } from '../course/verdict.ts';
import { SERVICES, type ServiceName } from '../../infra/services.ts';
import { bold, cyan, dim, FAIL, green, indent, PASS, plural, red, SKIP, wrap, yellow } from '../course/ui.ts';

const USAGE = usageText([
  'Usage: npm run lesson [NN] [-- options]',
  '  npm run lesson                 list lessons with their status and where to continue',
  '  npm run lesson 07              grade your code in lessons/07-*/',
  '  npm run lesson 07 -- --watch   re-grade on every save',
  '  npm run lesson 07 -- --hint    show the next hint',
  '  npm run lesson 07 -- --solution  grade the reference solution instead',
]);

const FLAGS = ['watch', 'hint', 'solution', 'help'] as const;

const rel = (path: string) => relative(REPO_ROOT, path);

function listLessons(lessons: Lesson[], progress: ProgressStore): number {
  console.log(bold('Lessons\n'));
  const recorded = progress.read().lessons;
  // Done means its last run passed: a lesson that passed once and fails now is not done.
  const done = new Set(lessons.filter((l) => recorded[l.number]?.passedAt && recorded[l.number]?.lastResult?.complete !== false).map((l) => l.number));
  for (const lesson of lessons) {
    const state = recorded[lesson.number] ?? { hintsShown: 0 };
    const counts = state.lastResult ? `${state.lastResult.passed}/${state.lastResult.total}` : '';
    const status = done.has(lesson.number)
      ? green('done   ')
      : state.passedAt && state.lastResult
        ? red(counts.padEnd(7))
        : state.lastResult
          ? yellow(counts.padEnd(7))
          : dim('pending');
    const services = lesson.services.length > 0 ? dim(` [${lesson.services.join(', ')}]`) : '';
    const regressed = !done.has(lesson.number) && state.passedAt ? red('  (passed before; its last run failed)') : '';
    console.log(`  ${status} ${bold(lesson.number)}  ${lesson.title}${services}${regressed}`);
  }
  const next = lessons.find((l) => !done.has(l.number));
  console.log(
    next
      ? `\n${done.size} of ${lessons.length} done. Continue with: ${cyan(`npm run lesson ${next.number}`)}`
      : `\nAll ${lessons.length} lessons done. Well played.`,
  );
  return EXIT.ok;
}

function showHint(lesson: Lesson, progress: ProgressStore): number {
  const index = progress.nextHint(lesson.number, lesson.hints.length);
  console.log(bold(`Lesson ${lesson.number} · hint ${index + 1} of ${lesson.hints.length}\n`));
  console.log(indent(wrap(lesson.hints[index]!, 96), 2));
  if (index + 1 < lesson.hints.length) console.log(dim(`\nRun the same command again for the next hint.`));
  else console.log(dim(`\nThat was the last hint. The reference solution is in ${rel(lesson.solutionDir)}/.`));
  return EXIT.ok;
}

function printHeader(lesson: Lesson, gradingSolution: boolean): void {
  console.log(`${bold(`Lesson ${lesson.number} · ${lesson.title}`)}\n`);
  console.log(indent(wrap(lesson.goal, 96), 2));
  console.log();
  if (gradingSolution) {
    console.log(`  Grading:  ${rel(lesson.solutionDir)}/ ${yellow('(reference solution)')}`);
  } else {
    console.log(`  Edit:     ${lesson.files.map((file) => `${rel(lesson.lessonDir)}/${file}`).join('\n            ')}`);
  }
  console.log(`  Read:     ${rel(lesson.docFile)}`);
  console.log(`  Services: ${lesson.services.length > 0 ? lesson.services.join(', ') : 'none'}`);
}

export function printRequirement(result: RequirementResult): void {
  const mark = result.state === 'passed' ? PASS : result.state === 'failed' ? FAIL : SKIP;
  console.log(`  ${mark} ${result.name}`);
  if (result.state === 'failed' && result.message) console.log(indent(red(result.message), 6));
  if (result.state === 'skipped' && result.message) console.log(indent(dim(result.message), 6));
}

/** Services the run used that no longer answer: their failures say nothing about the learner's code. */
async function servicesThatStopped(run: CheckRun): Promise<Array<{ service: ServiceName; url: string }>> {
  const { PROBES } = await import('../../infra/probes.ts');
  const down = await Promise.all(run.endpoints.map(async (endpoint) => {
    const answers = await Promise.race([
      PROBES[endpoint.service](endpoint.url).then(() => true, () => false),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5_000).unref()),
    ]);
    return answers ? undefined : endpoint;
  }));
  return down.filter((endpoint) => endpoint !== undefined);
}

function printVerdict(lesson: Lesson, run: CheckRun, gradingSolution: boolean, lessons: Lesson[], stopped: Array<{ service: ServiceName; url: string }> = []): boolean {
  for (const file of run.files) {
    if (file.loadError) {
      console.log(`  ${FAIL} the checks could not load the code under test:`);
      console.log(indent(red(file.loadError), 6));
    }
  }
  for (const error of run.unhandledErrors) {
    console.log(`  ${FAIL} an error escaped every requirement (an unhandled rejection or exception in the code under test):`);
    console.log(indent(red(error), 6));
  }
  const verdict = judgeFile(run, lesson.checkFile, { allowNotGraded: true });
  if (run.fatal) console.log(`\n${red(run.fatal)}`);
  console.log();
  if (verdict.loadError) {
    const where = /([\w./-]+\.ts):(\d+)(?::\d+)?/.exec(verdict.loadError)?.[0];
    console.log(`${bold(`Your code does not load${where ? `: ${where}` : ''}.`)} No requirement could run; the error is above. Fix it and run again.`);
    return false;
  }
  if (stopped.length > 0) {
    for (const { service, url } of stopped) {
      console.log(`${red(bold(`${SERVICES[service].label} stopped answering at ${url} during the run.`))} The failures above may not be`);
      console.log(`your code's: they are not graded. Bring it back with ${cyan(`npm run infra -- up ${service}`)} (or restart the broker`);
      console.log(`you pointed ${SERVICES[service].envVar} at), then run ${cyan(`npm run lesson ${lesson.number}`)} again.`);
    }
    return false;
  }
  if (verdict.total === 0) return false;
  const notRun = verdict.notRun > 0 ? ` ${verdict.notRun} did not run, because the run stopped (see above).` : '';
  const notGraded = verdict.notGraded > 0 ? dim(` (${verdict.notGraded} not graded here, see above)`) : '';
  if (!verdict.ok) {
    const graded = verdict.total - verdict.notGraded + verdict.notRun;
    console.log(`${bold(`${verdict.passed} of ${plural(graded, 'requirement')} pass.`)}${notRun}${notGraded} Stuck? ${cyan(`npm run lesson ${lesson.number} -- --hint`)}`);
    return false;
  }
  console.log(green(bold(`All ${plural(verdict.total - verdict.notGraded, 'requirement')} pass.`)) + notGraded);
  if (!gradingSolution) {
    const next = lessons[lessons.indexOf(lesson) + 1];
    console.log(`Lesson ${lesson.number} is done. Compare with the reference solution in ${rel(lesson.solutionDir)}/.`);
    console.log(next ? `Next: ${cyan(`npm run lesson ${next.number}`)} · ${next.title}` : 'That was the last lesson.');
  }
  return true;
}

interface Grading {
  run: Promise<CheckRun>;
  /** Prints what arrived while the header was being printed, then prints live. */
  startLiveOutput(): void;
  /** Prints "Checking …" once, before the first requirement. */
  announceChecking(): void;
}

/** Starts the checks at once; output waits until the header has been printed. */
function startGrading(lesson: Pick<Lesson, 'checkFile' | 'services' | 'timeoutSeconds'>, gradingSolution: boolean): Grading {
  const target = rel(gradingSolution ? SOLUTIONS_DIR : LESSONS_DIR);
  const pending: Array<() => void> = [];
  let live = false;
  let checking = false;
  const show = (print: () => void) => (live ? print() : pending.push(print));
  const announceChecking = () => {
    if (checking) return;
    checking = true;
    console.log(dim(`\nChecking ${target}/${basename(lesson.checkFile, '.test.ts')}/ …`));
  };
  const run = runChecks({
    files: [lesson.checkFile],
    targetRoot: gradingSolution ? SOLUTIONS_DIR : LESSONS_DIR,
    services: lesson.services,
    timeoutSeconds: lesson.timeoutSeconds,
    onProgress: (line) => show(() => console.log(dim(`  … ${line}`))),
    onService: (line) => show(() => console.log(`  ${PASS} ${line}`)),
    onRequirement: (result) =>
      show(() => {
        announceChecking();
        printRequirement(result);
      }),
  });
  return {
    run,
    startLiveOutput: () => {
      live = true;
      for (const print of pending.splice(0)) print();
    },
    announceChecking,
  };
}

async function finishGrading(grading: Grading, lesson: Lesson, gradingSolution: boolean, lessons: Lesson[], progress: ProgressStore): Promise<boolean> {
  grading.startLiveOutput();
  const run = await grading.run;
  if (!run.fatal) grading.announceChecking();
  const verdict = judgeFile(run, lesson.checkFile, { allowNotGraded: true });
  const stopped = verdict.ok ? [] : await servicesThatStopped(run);
  const allPass = printVerdict(lesson, run, gradingSolution, lessons, stopped);
  if (!gradingSolution && !run.fatal && stopped.length === 0) progress.recordRun(lesson.number, { passed: verdict.passed, total: verdict.total, complete: allPass });
  return allPass;
}

/** Re-grades on every save in the lesson folder, debounced; services stay up between runs. */
async function watchLesson(lesson: Lesson, gradingSolution: boolean, lessons: Lesson[], progress: ProgressStore): Promise<number> {
  const folder = gradingSolution ? lesson.solutionDir : lesson.lessonDir;
  let running = false;
  let pending = false;

  const rerun = async () => {
    if (running) {
      pending = true;
      return;
    }
    running = true;
    console.clear();
    const grading = startGrading(lesson, gradingSolution);
    printHeader(lesson, gradingSolution);
    await finishGrading(grading, lesson, gradingSolution, lessons, progress);
    console.log(dim(`\nWatching ${rel(folder)}/ for changes. Press Ctrl-C to stop.`));
    running = false;
    if (pending) {
      pending = false;
      void rerun();
    }
  };

  // Loaded only here: the one-shot grading path stays as quick to start as it can be.
  const { watchFolder } = await import('../course/watcher.ts');
  await watchFolder(folder, () => void rerun()).ready;
  await rerun();
  // Runs until Ctrl-C, which runCommand turns into a clean exit.
  return new Promise<number>(() => {});
}

async function main(): Promise<number> {
  const { positionals, flags } = parseArgs(process.argv.slice(2), FLAGS);
  if (flags.has('help')) {
    console.log(USAGE);
    return EXIT.ok;
  }
  if (positionals.length > 1) throw new UsageError(`expected one lesson number, got "${positionals.join(' ')}"`);

  // The common case, grading one lesson once, starts the test process before anything else
  // loads, so the runner adds as little as possible to the time until the verdict.
  const quick = positionals.length === 1 && flags.size <= 1 && !flags.has('watch') && !flags.has('hint') ? peekLesson(positionals[0]!) : undefined;
  const grading = quick ? startGrading(quick, flags.has('solution')) : undefined;

  // Loaded only now (schema validation is the slow part of start-up), while the checks already run.
  const [{ loadLessons }, { ProgressStore }] = await Promise.all([import('../course/manifest.ts'), import('../course/progress.ts')]);
  const lessons = loadLessons();
  const progress = new ProgressStore();
  if (positionals.length === 0) {
    if (flags.size > 0) throw new UsageError(`--${[...flags][0]} needs a lesson number, e.g. npm run lesson 01 -- --${[...flags][0]}`);
    return listLessons(lessons, progress);
  }

  const lesson = findLesson(positionals[0]!, lessons);
  if (flags.has('hint')) return showHint(lesson, progress);

  const gradingSolution = flags.has('solution');
  printHeader(lesson, gradingSolution);
  if (flags.has('watch')) {
    // Bring services up once, here, so every re-run finds them in the environment at once.
    const { bringUpServices } = await import('../course/services-ui.ts');
    await bringUpServices(lesson.services);
    return watchLesson(lesson, gradingSolution, lessons, progress);
  }
  const passed = await finishGrading(grading ?? startGrading(lesson, gradingSolution), lesson, gradingSolution, lessons, progress);
  return passed ? EXIT.ok : EXIT.failed;
}

runCommand(USAGE, main);
