import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs, UsageError } from '../course/args.ts';
import { EXIT, runCommand, usageText } from '../course/cli.ts';
import { findLesson } from '../course/lookup.ts';
import { loadLessons, type Lesson } from '../course/manifest.ts';
import { REPO_ROOT } from '../course/paths.ts';
import { proveFixtures, proveMessagesNameTheFile, proveSolutions, proveStarters, writeFixtureTsconfig, type Proof } from '../course/proofs.ts';
import { runChecks } from '../course/run-checks.ts';
import { judgeFile } from '../course/verdict.ts';
import { SERVICE_NAMES } from '../../infra/services.ts';
import { bringUpServices } from '../course/services-ui.ts';
import { bold, dim, FAIL, indent, PASS, red } from '../course/ui.ts';

const USAGE = usageText([
  'Usage: npm test [-- --lesson NN]',
  '  Type-checks everything, runs the runner unit tests and the service smoke checks, and proves for',
  '  every lesson that the solution passes, the starter fails, every known-wrong fixture fails, and',
  '  (for lessons with several files to edit) that with exactly one file unsolved, every failing',
  '  requirement names that file.',
  '  --lesson NN   only the proofs of one lesson',
]);

const resolvePackage = createRequire(import.meta.url).resolve;
const TSC = join(resolvePackage('typescript/package.json'), '..', 'bin', 'tsc');
const VITEST = join(resolvePackage('vitest/package.json'), '..', 'vitest.mjs');
const ESLINT = join(resolvePackage('eslint/package.json'), '..', 'bin', 'eslint.js');
/** Everything the course's own code is made of: linted as a whole. */
const LINTED = ['lessons', 'solutions', 'checks', 'infra', 'tooling', 'vitest.config.ts', 'eslint.config.js'];

const proofs: Proof[] = [];

function report(proof: Proof): void {
  proofs.push(proof);
  console.log(`  ${proof.ok ? PASS : FAIL} ${dim(proof.group.padEnd(10))} ${proof.name}`);
  if (!proof.ok && proof.detail) console.log(indent(red(proof.detail), 6));
}

function section(title: string): void {
  console.log(`\n${bold(title)}`);
}

/** Runs a command, capturing its output; the output is shown only when it fails. */
function runQuietly(args: string[]): Promise<{ ok: boolean; output: string; seconds: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1' } });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('exit', (code) => resolve({ ok: code === 0, output, seconds: (Date.now() - started) / 1000 }));
  });
}

async function typecheck(lessons: Lesson[], everything: boolean): Promise<void> {
  section('Types and lint');
  if (everything) {
    const all = await runQuietly([TSC, '--noEmit', '-p', join(REPO_ROOT, 'tsconfig.json')]);
    report({ group: 'tsc', name: `lessons, solutions, checks, infra and tooling type-check (${all.seconds.toFixed(1)} s)`, ok: all.ok, detail: all.output.trim() });
  }
  if (everything) {
    const lint = await runQuietly([ESLINT, '--max-warnings=0', ...LINTED]);
    report({ group: 'lint', name: `eslint over ${LINTED.slice(0, 5).join(', ')}: no floating or misused promises (${lint.seconds.toFixed(1)} s)`, ok: lint.ok, detail: lint.output.trim() });
  }
  const fixtures = await runQuietly([TSC, '--noEmit', '-p', writeFixtureTsconfig(lessons)]);
  report({ group: 'tsc', name: `every known-wrong fixture type-checks over its solution (${fixtures.seconds.toFixed(1)} s)`, ok: fixtures.ok, detail: fixtures.output.trim() });
}

async function unitTests(): Promise<void> {
  section('Runner unit tests');
  const run = await runQuietly([VITEST, 'run', '--project=unit', '--reporter=dot']);
  const summary = /^\s*Tests\s+(\d.+)$/m.exec(run.output)?.[1]?.trim() ?? '';
  report({ group: 'unit', name: `runner unit tests and course structure ${summary ? `(${summary})` : ''}`.trim(), ok: run.ok, detail: run.output.trim() });
}

async function smokeChecks(): Promise<void> {
  const dir = join(REPO_ROOT, 'checks', 'smoke');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.test.ts')).sort() : [];
  if (files.length === 0) return;
  section('Service smoke checks');
  const run = await runChecks({
    files: files.map((file) => join(dir, file)),
    targetRoot: join(REPO_ROOT, 'solutions'),
    services: SERVICE_NAMES,
    // A private Kafka on a fresh machine (jars, storage format, start, stop, crash, start) takes minutes.
    timeoutSeconds: 240,
  });
  for (const file of files) {
    const verdict = judgeFile(run, join(dir, file));
    const failed = verdict.requirements.filter((r) => r.state !== 'passed');
    report({
      group: 'smoke',
      name: verdict.requirements.map((r) => r.name).join('; ') || file,
      ok: verdict.ok,
      detail: verdict.problem ?? failed.map((r) => `${r.name}: ${r.message ?? r.state}`).join('\n'),
    });
  }
  if (run.fatal) report({ group: 'smoke', name: 'the smoke checks ran', ok: false, detail: run.fatal });
}

async function timed<T>(title: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const result = await work();
  console.log(dim(`  ${title} took ${((Date.now() - started) / 1000).toFixed(0)} s`));
  return result;
}

async function lessonProofs(lessons: Lesson[]): Promise<void> {
  const numbers = lessons.map((l) => l.number).join(', ');
  section(`Reference solutions pass (${numbers})`);
  const { proofs: solutionProofs, names } = await timed('grading the solutions', () => proveSolutions(lessons));
  solutionProofs.forEach(report);
  section(`Starters fail (${numbers})`);
  (await timed('grading the starters', () => proveStarters(lessons))).forEach(report);
  section(`Known-wrong fixtures fail (${numbers})`);
  const fixtureProofs = await timed('grading the fixtures', () => proveFixtures(lessons, names));
  fixtureProofs.sort((a, b) => a.group.localeCompare(b.group)).forEach(report);
}

async function messageProofs(lessons: Lesson[]): Promise<void> {
  section('Messages name the unsolved file (lessons with several files to edit)');
  const proofs = await timed('grading one unsolved file at a time', () => proveMessagesNameTheFile(lessons));
  proofs.sort((a, b) => a.group.localeCompare(b.group)).forEach(report);
}

async function main(): Promise<number> {
  const { positionals, flags } = parseArgs(process.argv.slice(2), ['lesson', 'help']);
  if (flags.has('help')) {
    console.log(USAGE);
    return EXIT.ok;
  }
  const all = loadLessons();
  let lessons = all;
  if (flags.has('lesson')) {
    if (positionals.length !== 1) throw new UsageError('--lesson needs one lesson number, e.g. npm test -- --lesson 03');
    lessons = [findLesson(positionals[0]!, all)];
  } else if (positionals.length > 0) {
    throw new UsageError(`unexpected "${positionals.join(' ')}"`);
  }
  const everything = lessons === all;
  const started = Date.now();

  await typecheck(lessons, everything);
  if (everything) await unitTests();

  section('Services');
  const services = everything ? SERVICE_NAMES : lessons[0]!.services;
  await bringUpServices(services);
  if (everything) await smokeChecks();
  await lessonProofs(lessons);
  await messageProofs(lessons);

  const passed = proofs.filter((p) => p.ok).length;
  const failed = proofs.length - passed;
  console.log(`\n${bold(failed === 0 ? 'Everything holds.' : `${failed} of ${proofs.length} proofs failed.`)} ${dim(`(${((Date.now() - started) / 1000).toFixed(0)} s)`)}`);
  // The plain closing line that CI systems read.
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? EXIT.ok : EXIT.failed;
}

runCommand(USAGE, main);
