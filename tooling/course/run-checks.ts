import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { stripVTControlCharacters } from 'node:util';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { isServiceName, type ServiceName } from '../../infra/services.ts';
import { PROTOCOL_ENV, readJournal, type ReporterMessage } from './protocol.ts';
import { PidRegistry } from './processes.ts';
import { REPO_ROOT } from './paths.ts';

export type RequirementState = 'passed' | 'failed' | 'skipped';

export interface RequirementResult {
  /** The check file, relative to the repository, e.g. checks/01-signup-events.test.ts */
  file: string;
  /** The requirement: the test's name. */
  name: string;
  state: RequirementState;
  /** For a failure: the teaching message. */
  message?: string;
  durationMs: number;
}

export interface FileResult {
  file: string;
  requirements: RequirementResult[];
  /** The check file could not run at all (e.g. the code under test does not load). */
  loadError?: string;
}

export interface CheckRun {
  files: FileResult[];
  /** Errors that escaped every test, such as an unhandled rejection in learner code. */
  unhandledErrors: string[];
  /** The run could not start or was cut short (a missing service, a crash of the test process). */
  fatal?: string;
  /** The requirement that blocked its process, which was then ended (check file relative to the repository). */
  hung?: { file: string; name: string };
  /** The services the test process used, and where. */
  endpoints: Array<{ service: ServiceName; url: string }>;
  /** How many requirements each check file has (by relative path), known once it was collected. */
  collected: Record<string, number>;
}

export interface RunChecksOptions {
  /** Check files (absolute or relative to the repository). */
  files: string[];
  /** The folder holding the `NN-slug/` code to grade (see paths.ts). */
  targetRoot: string;
  services: readonly ServiceName[];
  /** The per-requirement limit; a requirement still running well after it counts as hung. */
  timeoutSeconds: number;
  /** Run several check files at the same time. */
  parallel?: boolean;
  /** Run only the requirements with these names (the others are skipped). */
  only?: readonly string[];
  /** Called as each requirement finishes, for live output. */
  onRequirement?: (result: RequirementResult) => void;
  /** Progress lines from the test process (services starting). */
  onProgress?: (line: string) => void;
  /** A service is ready: "Redis  redis://… (native: …)". */
  onService?: (line: string) => void;
  /** Also write a JUnit XML report to this path. */
  junitFile?: string;
  /** The vitest project the files belong to. */
  project?: string;
}

/** Grace beyond the requirement's own limit before a requirement counts as hung (a busy loop). */
const HANG_GRACE_MS = 5_000;

const VITEST_CLI = join(createRequire(import.meta.url).resolve('vitest/package.json'), '..', 'vitest.mjs');
const REPORTER = join(REPO_ROOT, 'tooling/course/ipc-reporter.ts');

/** Explains vitest's timeout error the way a learner needs it. */
export function teachingMessage(colored: string, timeoutSeconds: number, where?: string): string {
  // Some tools colour their messages whatever NO_COLOR says; a teaching message is plain text.
  const raw = stripVTControlCharacters(colored).replace(/ \/\/ Object\.is equality$/m, '');
  if (/^(Test|Hook) timed out in \d+ms/.test(raw)) {
    return (
      `did not finish within ${timeoutSeconds} s. Something this requirement waits for never happened: ` +
      'a promise that never settles, a consumer that never receives, a connection that never opens.'
    );
  }
  if (/^Timed out in waitFor!/.test(raw)) {
    // vi.waitFor gives this when one attempt of what it polls is still running at its deadline.
    return (
      'gave up waiting: one attempt of what this requirement polls (a request, a query, a read) was still ' +
      'running at its deadline. A service that does not answer, or answers only after a long wait, causes this.'
    );
  }
  const todo = /^TODO: ([^\s(]+)(?: \((.+)\))?$/.exec(raw.trim());
  if (todo) {
    const at = todo[2] ?? where;
    return `not written yet: ${todo[1]} still throws its TODO${at ? ` (${at})` : ''}.`;
  }
  return raw.trim();
}

export function vitestArguments(options: RunChecksOptions): string[] {
  const timeoutMs = options.timeoutSeconds * 1000;
  const args = [
    VITEST_CLI,
    'run',
    `--project=${options.project ?? 'checks'}`,
    `--testTimeout=${timeoutMs}`,
    `--hookTimeout=${Math.max(timeoutMs, 30_000)}`,
    `--fileParallelism=${options.parallel ?? false}`,
    `--reporter=${REPORTER}`,
  ];
  if (options.junitFile) args.push('--reporter=junit', `--outputFile.junit=${options.junitFile}`);
  if (options.only) args.push(`--testNamePattern=${options.only.map(escapeRegExp).join('|') || '^$'}`);
  return [...args, ...options.files.map((file) => relative(REPO_ROOT, file))];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Runs check files with vitest, in a process of its own, against one target, and returns each
 * requirement's result. A requirement that blocks its process past the limit is reported by name,
 * and every process the run started is killed before this returns.
 */
export function runChecks(options: RunChecksOptions): Promise<CheckRun> {
  const pids = new PidRegistry();
  const journalFile = pids.file.replace(/\.pids$/, '.journal');
  const child = spawn(process.execPath, vitestArguments(options), {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: {
      ...process.env,
      [PROTOCOL_ENV.targetRoot]: options.targetRoot,
      [PROTOCOL_ENV.services]: options.services.join(','),
      [PROTOCOL_ENV.pidFile]: pids.file,
      [PROTOCOL_ENV.journalFile]: journalFile,
      [PROTOCOL_ENV.runner]: '1',
      NO_COLOR: '1',
    },
  });

  // However this process ends (an error, Ctrl-C), the test process and its children end with it.
  const killTree = () => pids.killAll(child.pid);
  process.once('exit', killTree);

  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));

  const files = new Map<string, FileResult>();
  const fileFor = (moduleId: string) => {
    const file = relative(REPO_ROOT, moduleId);
    if (!files.has(file)) files.set(file, { file, requirements: [] });
    return files.get(file)!;
  };
  const run: CheckRun = { files: [], unhandledErrors: [], endpoints: [], collected: {} };
  const record = (file: string, result: RequirementResult) => {
    fileFor(file).requirements.push(result);
    options.onRequirement?.(result);
  };

  child.on('message', (message: ReporterMessage) => {
    switch (message.type) {
      case 'test-end': {
        const state: RequirementState = message.state === 'passed' ? 'passed' : message.state === 'failed' ? 'failed' : 'skipped';
        record(message.file, {
          file: relative(REPO_ROOT, message.file),
          name: message.name,
          state,
          message: state === 'failed' ? teachingMessage(message.message ?? 'failed', options.timeoutSeconds, message.where) : message.message,
          durationMs: message.durationMs,
        });
        break;
      }
      case 'module-end':
        if (message.errors.length > 0) fileFor(message.file).loadError = stripVTControlCharacters(message.errors.join('\n'));
        break;
      case 'run-end':
        run.unhandledErrors = message.unhandledErrors;
        break;
      case 'progress':
        options.onProgress?.(message.text);
        break;
      case 'service':
        if (isServiceName(message.service)) run.endpoints.push({ service: message.service, url: message.url });
        options.onService?.(message.text);
        break;
      case 'collected':
        run.collected[relative(REPO_ROOT, message.file)] = message.requirements;
        break;
      case 'fatal':
        run.fatal = message.text;
        break;
    }
  });

  const watchdog = setInterval(() => {
    const journal = readJournal(journalFile);
    const hung = journal.open.find((entry) => Date.now() - entry.at > options.timeoutSeconds * 1000 + HANG_GRACE_MS);
    if (!hung || run.fatal) return;
    // The test process is stuck: take what it could not report from the journal, then end it.
    for (const ended of journal.ended) {
      const reported = files.get(relative(REPO_ROOT, ended.file))?.requirements.some((r) => r.name === ended.name);
      if (!reported) {
        record(ended.file, {
          file: relative(REPO_ROOT, ended.file),
          name: ended.name,
          state: ended.state,
          message: ended.state === 'failed' ? teachingMessage(ended.message ?? 'failed', options.timeoutSeconds) : undefined,
          durationMs: 0,
        });
      }
    }
    record(hung.file, {
      file: relative(REPO_ROOT, hung.file),
      name: hung.name,
      state: 'failed',
      message:
        `did not finish within ${options.timeoutSeconds} s and blocked its process: ` +
        'look for a loop that never yields (a `while` that waits for something without `await`).',
      durationMs: Date.now() - hung.at,
    });
    run.hung = { file: relative(REPO_ROOT, hung.file), name: hung.name };
    run.fatal = `stopped: "${hung.name}" hung, so the requirements after it did not run`;
    pids.killAll(child.pid);
  }, 250);

  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      clearInterval(watchdog);
      process.off('exit', killTree);
      pids.killAll(child.pid);
      rmSync(journalFile, { force: true });
      run.files = [...files.values()];
      const nothingRan = run.files.every((file) => file.requirements.length === 0 && !file.loadError);
      if (!run.fatal && nothingRan && code !== 0) {
        run.fatal = `the checks did not run (vitest exited with ${signal ?? code}):\n${output.trim().split('\n').slice(-15).join('\n')}`;
      }
      resolve(run);
    });
  });
}

/** The results of one check file, given its absolute path. */
export function fileResult(run: CheckRun, checkFile: string): FileResult | undefined {
  return run.files.find((file) => join(REPO_ROOT, file.file) === checkFile);
}
