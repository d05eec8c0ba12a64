import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { parseArgs, UsageError } from '../course/args.ts';
import { EXIT, runCommand, usageText } from '../course/cli.ts';
import { findLesson } from '../course/lookup.ts';
import { loadLessons, type Lesson } from '../course/manifest.ts';
import { REPO_ROOT } from '../course/paths.ts';
import { PROTOCOL_ENV } from '../course/protocol.ts';
import { bringUpServices } from '../course/services-ui.ts';
import { bold, dim, FAIL, PASS } from '../course/ui.ts';
import type { ServiceEndpoints, ServiceName } from '../../infra/services.ts';
import { SERVICE_NAMES } from '../../infra/services.ts';

const USAGE = usageText([
  'Usage: npm run bench [-- NN …] [--quick]',
  '  Prints how long a verdict takes: `npm run lesson NN` warm (services up) and cold, median of',
  '  several runs, against vitest run directly on the same check; the same for each service smoke',
  '  check; and the lesson 07 reference producer throughput against Kafka\'s own producer tool.',
  '  NN …     only these lessons (default: all)',
  '  --quick  one warm run each, no cold runs, no throughput',
]);

const WARM_RUNS = 5;
const COLD_RUNS = 3;
const VITEST = join(createRequire(import.meta.url).resolve('vitest/package.json'), '..', 'vitest.mjs');

interface Timing {
  seconds: number;
  ok: boolean;
}

function timeCommand(args: string[], env: NodeJS.ProcessEnv = {}, command = process.execPath): Timing {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, args, { cwd: REPO_ROOT, env: { ...process.env, ...env, NO_COLOR: '1' }, stdio: 'ignore' });
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, ok: result.status === 0 };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function medianOf(runs: number, prepare: () => void, measure: () => Timing): { seconds: number; ok: boolean } {
  const timings: Timing[] = [];
  for (let i = 0; i < runs; i++) {
    prepare();
    timings.push(measure());
  }
  return { seconds: median(timings.map((t) => t.seconds)), ok: timings.every((t) => t.ok) };
}

const runnerCommand = (lesson: Lesson) => ['--import', 'tsx', 'tooling/cli/lesson.ts', lesson.number, '--solution'];
const vitestCommand = (file: string) => [VITEST, 'run', '--project=checks', file];

/** Cold, for a lesson without services, means the transform caches of tsx and vitest are gone. */
function dropCaches(): void {
  rmSync(join(REPO_ROOT, 'node_modules', '.vite'), { recursive: true, force: true });
  rmSync(join(REPO_ROOT, 'node_modules', '.vitest'), { recursive: true, force: true });
  rmSync(join(tmpdir(), `tsx-${userInfo().uid}`), { recursive: true, force: true });
}

/** Cold, for a lesson with services, means they are stopped first; only services the course started natively can be. */
function stopServices(services: readonly ServiceName[], endpoints: ServiceEndpoints): boolean {
  if (!services.every((s) => endpoints[s]?.provider === 'native')) return false;
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'tooling/cli/infra.ts', 'down', ...services], { cwd: REPO_ROOT, stdio: 'ignore' });
  return result.status === 0;
}

function format(seconds: number | undefined): string {
  return seconds === undefined ? 'n/a' : `${seconds.toFixed(2)} s`;
}

function row(cells: string[], widths: number[]): string {
  return cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
}

interface LessonRow {
  label: string;
  warm: number;
  cold?: number;
  direct: number;
  ok: boolean;
}

function benchLesson(lesson: Lesson, endpoints: ServiceEndpoints, runs: number, cold: boolean): LessonRow {
  const env = { [PROTOCOL_ENV.targetRoot]: 'solutions', [PROTOCOL_ENV.services]: lesson.services.join(',') };
  const warm = medianOf(runs, () => {}, () => timeCommand(runnerCommand(lesson)));
  const direct = medianOf(runs, () => {}, () => timeCommand(vitestCommand(lesson.checkFile), env));
  let coldRun: { seconds: number; ok: boolean } | undefined;
  if (cold && (lesson.services.length === 0 || stopServices(lesson.services, endpoints))) {
    const prepare = lesson.services.length === 0 ? dropCaches : () => stopServices(lesson.services, endpoints);
    coldRun = medianOf(COLD_RUNS, prepare, () => timeCommand(runnerCommand(lesson)));
  }
  const ok = warm.ok && direct.ok && (coldRun?.ok ?? true);
  return { label: `lesson ${lesson.number}`, warm: warm.seconds, direct: direct.seconds, cold: coldRun?.seconds, ok };
}

function benchSmoke(service: ServiceName, endpoints: ServiceEndpoints, runs: number, cold: boolean): LessonRow {
  const file = join('checks', 'smoke', `${service}.test.ts`);
  const command = ['--import', 'tsx', 'tooling/cli/smoke.ts', service];
  const warm = medianOf(runs, () => {}, () => timeCommand(command));
  const direct = medianOf(runs, () => {}, () => timeCommand(vitestCommand(file), { [PROTOCOL_ENV.services]: service }));
  const coldRun = cold && stopServices([service], endpoints)
    ? medianOf(COLD_RUNS, () => stopServices([service], endpoints), () => timeCommand(command))
    : undefined;
  const ok = warm.ok && direct.ok && (coldRun?.ok ?? true);
  return { label: `smoke ${service}`, warm: warm.seconds, direct: direct.seconds, cold: coldRun?.seconds, ok };
}

/** The commands as a person types them: npm's own start-up is in both. */
function benchThroughNpm(lesson: Lesson, runs: number) {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
  const file = `checks/${lesson.slug}.test.ts`;
  const runner = medianOf(runs, () => {}, () => timeCommand(['run', '--silent', 'lesson', lesson.number, '--', '--solution'], {}, npm));
  const vitest = medianOf(runs, () => {}, () => timeCommand(['vitest', 'run', '--project=checks', file], { [PROTOCOL_ENV.targetRoot]: 'solutions', [PROTOCOL_ENV.services]: '' }, npx));
  return { lesson: lesson.number, file, runner: runner.seconds, vitest: vitest.seconds };
}

function percent(value: number, base: number): string {
  return `${value >= base ? '+' : ''}${(((value - base) / base) * 100).toFixed(0)}%`;
}

const WIDTHS = [14, 9, 9, 14, 16];

function printHeaderRow(): void {
  console.log(bold(row(['', 'warm', 'cold', 'vitest alone', 'runner overhead'], WIDTHS)));
}

function printRow(r: LessonRow): LessonRow {
  console.log(row([r.label, format(r.warm), format(r.cold), format(r.direct), percent(r.warm, r.direct)], WIDTHS) + (r.ok ? '' : `  ${FAIL} a run failed`));
  return r;
}

async function throughput(endpoints: ServiceEndpoints): Promise<{ ratio: number } | undefined> {
  const module = join(REPO_ROOT, 'tooling', 'bench', 'kafka-throughput.ts');
  if (!existsSync(module) || !endpoints.kafka) return undefined;
  const { ensureKafkaJars } = await import('../../infra/native/kafka.ts');
  const { measureKafkaThroughput } = await import('../bench/kafka-throughput.ts');
  const libsDir = await ensureKafkaJars((line) => console.log(dim(`  … ${line}`)));
  const result = await measureKafkaThroughput({ brokers: endpoints.kafka.url, libsDir });
  console.log(bold('\nKafka producer throughput'));
  console.log(`  ${result.messages.toLocaleString('en')} messages of ${result.messageSize} bytes, acks=all, same broker`);
  console.log(`  lesson 07 reference producer   ${Math.round(result.referencePerSecond).toLocaleString('en').padStart(10)} msg/s`);
  console.log(`  kafka ProducerPerformance      ${Math.round(result.toolPerSecond).toLocaleString('en').padStart(10)} msg/s`);
  console.log(`  ratio                          ${result.ratio.toFixed(2).padStart(10)}`);
  return result;
}

async function main(): Promise<number> {
  const { positionals, flags } = parseArgs(process.argv.slice(2), ['quick', 'help']);
  if (flags.has('help')) {
    console.log(USAGE);
    return EXIT.ok;
  }
  const all = loadLessons();
  const lessons = positionals.length > 0 ? positionals.map((p) => findLesson(p, all)) : all;
  if (lessons.length === 0) throw new UsageError('no lessons to measure');
  const quick = flags.has('quick');
  const runs = quick ? 1 : WARM_RUNS;

  console.log(bold('Services'));
  // Every measured command finds its services itself, as it would when a person runs it.
  const endpoints = await bringUpServices([...SERVICE_NAMES], { exportToEnv: false });
  console.log(dim(`\nWall time until the verdict, reference solutions, median of ${runs} warm${quick ? '' : ` and ${COLD_RUNS} cold`} runs.`));
  console.log(dim('"cold": services stopped first (or, for lesson 01, the transform caches dropped). npm itself adds about 0.2 s.\n'));

  printHeaderRow();
  const rows = lessons.map((lesson) => printRow(benchLesson(lesson, endpoints, runs, !quick)));
  const smoke = SERVICE_NAMES.filter((s) => existsSync(join(REPO_ROOT, 'checks', 'smoke', `${s}.test.ts`))).map((s) => printRow(benchSmoke(s, endpoints, runs, !quick)));
  const first = lessons.find((lesson) => lesson.services.length === 0);
  const viaNpm = first ? benchThroughNpm(first, runs) : undefined;
  if (viaNpm) {
    console.log(dim(`\nAs typed, through npm: \`npm run lesson ${viaNpm.lesson} -- --solution\` ${format(viaNpm.runner)}, ` +
      `\`npx vitest run ${viaNpm.file}\` ${format(viaNpm.vitest)} (${percent(viaNpm.runner, viaNpm.vitest)}).`));
  }
  await bringUpServices([...SERVICE_NAMES], { quiet: true, exportToEnv: false });

  const ratio = quick ? undefined : await throughput(endpoints);

  const lesson01 = rows.find((r) => r.label === 'lesson 01');
  const worst = Math.max(...rows.map((r) => (r.warm - r.direct) / r.direct));
  console.log(bold('\nTargets'));
  if (lesson01) console.log(`  ${lesson01.warm < 2 ? PASS : FAIL} warm lesson 01 verdict under 2 s (${format(lesson01.warm)})`);
  console.log(`  ${worst < 0.25 ? PASS : FAIL} runner overhead under 25%, bare processes (at most ${(worst * 100).toFixed(0)}%)`);
  if (viaNpm) {
    const overhead = (viaNpm.runner - viaNpm.vitest) / viaNpm.vitest;
    console.log(`  ${overhead < 0.25 ? PASS : FAIL} runner overhead under 25%, as typed through npm (${percent(viaNpm.runner, viaNpm.vitest)})`);
  }
  if (ratio) console.log(`  ${ratio.ratio >= 0.25 ? PASS : FAIL} Kafka reference producer at least 0.25 of ProducerPerformance (${ratio.ratio.toFixed(2)})`);
  return [...rows, ...smoke].every((r) => r.ok) ? EXIT.ok : EXIT.failed;
}

runCommand(USAGE, main);
