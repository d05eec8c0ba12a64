import { mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { MutantResult, PartialStrykerOptions } from '@stryker-mutator/api/core';
import { parseArgs, UsageError } from '../course/args.ts';
import { EXIT, runCommand, usageText } from '../course/cli.ts';
import { findLesson } from '../course/lookup.ts';
import { loadLessons, type Lesson } from '../course/manifest.ts';
import { REPO_ROOT, SOLUTIONS_DIR, STATE_DIR } from '../course/paths.ts';
import { PROTOCOL_ENV } from '../course/protocol.ts';
import { bringUpServices } from '../course/services-ui.ts';
import { bold, dim, green, red, yellow } from '../course/ui.ts';

const USAGE = usageText([
  'Usage: npm run mutate -- NN',
  '  Mutation testing of a lesson\'s checks with StrykerJS: each small change to the reference solution',
  '  (a condition flipped, a call removed, a value replaced) is graded by the lesson\'s checks against the',
  '  real services. A mutant that every requirement still passes shows a mistake the checks would miss.',
  '  Reports: .course/reports/mutation/NN-slug.html and .json. A tool for course authors, not part of npm test.',
]);

const REPORTS_DIR = join(STATE_DIR, 'reports', 'mutation');

/** Killed or timed out: the checks noticed the change. */
const DETECTED = new Set(['Killed', 'Timeout']);
/** Survived, or no check ran the changed code at all. */
const UNDETECTED = new Set(['Survived', 'NoCoverage']);

/** Two mutants at a time: each runs the lesson's whole check file, and the checks start processes of their own. */
const CONCURRENCY = 2;

function strykerOptions(lesson: Lesson): PartialStrykerOptions {
  const checkFile = relative(REPO_ROOT, lesson.checkFile);
  return {
    testRunner: 'vitest',
    plugins: ['@stryker-mutator/vitest-runner'],
    vitest: { configFile: 'tooling/mutate/vitest.config.ts', related: false },
    testFiles: [checkFile],
    mutate: lesson.files.map((file) => relative(REPO_ROOT, join(SOLUTIONS_DIR, lesson.slug, file))),
    // Much of a lesson's code runs in processes the checks start, where per-test coverage cannot
    // be measured: every mutant is graded by the whole check file instead.
    coverageAnalysis: 'off',
    concurrency: CONCURRENCY,
    timeoutMS: lesson.timeoutSeconds * 1000,
    timeoutFactor: 2,
    // One folder per lesson, so runs of two lessons side by side never clean up each other's sandboxes.
    tempDirName: relative(REPO_ROOT, join(STATE_DIR, 'stryker-tmp', lesson.slug)),
    cleanTempDir: 'always',
    // The sandboxes sit inside the repository, so Node finds its node_modules by walking up. Linking
    // them in would make Stryker search the whole tree for node_modules folders first, the services'
    // data in .course included, where a topic Kafka deletes meanwhile ends the run with ENOENT.
    symlinkNodeModules: false,
    ignorePatterns: ['.course', '.ci', 'docs', 'lessons', 'coverage', 'reports'],
    reporters: ['html', 'json', 'progress'],
    htmlReporter: { fileName: relative(REPO_ROOT, join(REPORTS_DIR, `${lesson.slug}.html`)) },
    jsonReporter: { fileName: relative(REPO_ROOT, join(REPORTS_DIR, `${lesson.slug}.json`)) },
    logLevel: 'warn' as PartialStrykerOptions['logLevel'],
    fileLogLevel: 'off' as PartialStrykerOptions['fileLogLevel'],
  };
}

function where(mutant: MutantResult): string {
  return `${mutant.fileName}:${mutant.location.start.line}:${mutant.location.start.column}`;
}

function printSummary(lesson: Lesson, results: MutantResult[]): void {
  const detected = results.filter((m) => DETECTED.has(m.status)).length;
  const undetected = results.filter((m) => UNDETECTED.has(m.status));
  const invalid = results.filter((m) => m.status === 'CompileError' || m.status === 'RuntimeError').length;
  const graded = detected + undetected.length;
  const score = graded === 0 ? 0 : (100 * detected) / graded;

  console.log(bold(`\nLesson ${lesson.number}: mutation score ${score.toFixed(1)} %`));
  console.log(`  ${detected} of ${graded} mutants detected by the checks${invalid > 0 ? dim(` (${invalid} more did not run: compile or runtime error)`) : ''}`);
  for (const file of lesson.files) {
    const path = relative(REPO_ROOT, join(SOLUTIONS_DIR, lesson.slug, file));
    const ofFile = results.filter((m) => m.fileName.endsWith(path));
    const caught = ofFile.filter((m) => DETECTED.has(m.status)).length;
    const total = ofFile.filter((m) => DETECTED.has(m.status) || UNDETECTED.has(m.status)).length;
    console.log(`  ${path.padEnd(60)} ${caught}/${total}`);
  }
  if (undetected.length > 0) {
    console.log(bold('\nMutants every requirement still passes (each a candidate for a new requirement):'));
    for (const mutant of undetected.sort((a, b) => where(a).localeCompare(where(b), 'en', { numeric: true }))) {
      const label = mutant.status === 'NoCoverage' ? yellow('not run') : red('survived');
      console.log(`  ${label} ${relative(REPO_ROOT, mutant.fileName)}:${mutant.location.start.line} ${mutant.mutatorName}: ${dim(mutant.replacement.split('\n')[0]!.slice(0, 100))}`);
    }
  } else {
    console.log(green('  every mutant was detected'));
  }
  console.log(dim(`\n  report: ${relative(REPO_ROOT, join(REPORTS_DIR, `${lesson.slug}.html`))}`));
}

async function main(): Promise<number> {
  const { positionals, flags } = parseArgs(process.argv.slice(2), ['help']);
  if (flags.has('help')) {
    console.log(USAGE);
    return EXIT.ok;
  }
  if (positionals.length !== 1) throw new UsageError('name one lesson, e.g. npm run mutate -- 01');
  const lesson = findLesson(positionals[0]!, loadLessons());

  console.log(bold(`Mutation testing of lesson ${lesson.number}: ${lesson.title}`));
  await bringUpServices(lesson.services);
  // Stryker's test processes inherit these: the checks grade the (mutated) solution.
  process.env[PROTOCOL_ENV.targetRoot] = 'solutions';
  process.env[PROTOCOL_ENV.services] = lesson.services.join(',');
  mkdirSync(REPORTS_DIR, { recursive: true });

  const { Stryker } = await import('@stryker-mutator/core');
  const results = await new Stryker(strykerOptions(lesson)).runMutationTest();
  printSummary(lesson, results);
  return EXIT.ok;
}

runCommand(USAGE, main);
