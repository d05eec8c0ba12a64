import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { afterAll } from 'vitest';
import { freePort } from '../../infra/net.ts';
import { registerPid } from '../../tooling/course/protocol.ts';
import { locationInGradedCode, todoMessage } from '../../tooling/course/todo.ts';
import { lessonFile } from './lesson.ts';

const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * A learner program running as its own operating-system process, the way a deployed service
 * runs: its own memory, its own connections. Output is captured for assertions and messages.
 */
export class LessonProcess {
  readonly name: string;
  readonly exited: Promise<ProcessExit>;
  private readonly child: ChildProcess;
  private captured = '';
  private exit: ProcessExit | undefined;

  constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.child = child;
    child.stdout?.on('data', (chunk: Buffer) => (this.captured += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.captured += chunk.toString()));
    // 'close' rather than 'exit': it comes after the last of the output has been read.
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** Everything the process printed so far (stdout and stderr, interleaved). */
  output(): string {
    return this.captured;
  }

  /**
   * Waits until the output matches. Fails at once when the process has exited without printing it or
   * still throws a TODO, and at the deadline otherwise, showing what the process printed instead.
   */
  // A process start takes a second on an idle machine and far longer when the whole suite runs on two cores.
  async waitForOutput(pattern: RegExp, what: string, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.captured.match(pattern);
      if (match) return match;
      const todo = /\bTODO: ([\w.]+)/.exec(this.captured);
      if (todo) throw new Error(todoMessage(todo[1]!, locationInGradedCode(this.captured.slice(todo.index))));
      if (this.exit || Date.now() > deadline) {
        const state = this.exit ? `it exited (${describeExit(this.exit)})` : 'it is still running';
        throw new Error(
          `${this.name} never ${what} (waited for output matching ${pattern}; ${state}).\n` +
            `Its output was:\n${outputTail(this.captured) || '  (nothing)'}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Sends a signal (SIGKILL by default: a crash, no cleanup) and waits for the process to end. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ProcessExit> {
    if (this.exit) return this.exit;
    this.child.kill(signal);
    return this.exited;
  }

  /** Asks the process to stop (SIGTERM), and kills it if it has not ended within the grace time. */
  async stop(graceMs = 3_000): Promise<ProcessExit> {
    if (this.exit) return this.exit;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Processes still running when the test file ends (a check that forgot its procs fixture) are stopped. */
const live = new Set<LessonProcess>();

afterAll(async () => {
  await Promise.all([...live].map((p) => p.stop()));
});

export interface StartOptions {
  /** Extra environment, e.g. serviceEnv('redis') or names of queues for this test. */
  env?: Record<string, string>;
  args?: string[];
  /** How messages refer to it, e.g. "the email service". */
  name?: string;
}

/** Starts `lessons/<slug>/<file>` (or the solution or fixture under grading) with tsx. */
export function startLessonProcess(slug: string, file: string, options: StartOptions = {}): LessonProcess {
  const child = spawn(process.execPath, ['--import', tsxLoader, lessonFile(slug, file), ...(options.args ?? [])], {
    env: { ...process.env, ...options.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const processName = options.name ?? file;
  const lessonProcess = new LessonProcess(processName, child);
  live.add(lessonProcess);
  void lessonProcess.exited.then(() => live.delete(lessonProcess));
  // The runner kills whatever is listed here if a run is cut short (a hang, Ctrl-C).
  registerPid(child.pid);
  return lessonProcess;
}

export interface HttpStartOptions extends StartOptions {
  /** The path that answers once the service is ready (any status below 500). Default: /health. */
  readyPath?: string;
  timeoutMs?: number;
}

/** A lesson HTTP service: its process, the free port it was given (PORT), and its base URL. */
export interface HttpService {
  process: LessonProcess;
  port: number;
  url: string;
}

/**
 * The lesson processes one test starts: stopped newest first after the test (before the brokers
 * and schemas they use are removed), with one combined log of all of them for failure messages.
 */
export class ProcessGroup {
  private readonly started: LessonProcess[] = [];

  /** Starts `<slug>/<file>` of the code under grading with tsx. */
  start(slug: string, file: string, options: StartOptions = {}): LessonProcess {
    const started = startLessonProcess(slug, file, options);
    this.started.push(started);
    return started;
  }

  /**
   * Starts an HTTP service on a free port (passed as PORT) and waits until `readyPath` answers.
   * Fails at once when the process exits or reports a TODO, and at the deadline with its output.
   */
  async startHttp(slug: string, file: string, options: HttpStartOptions = {}): Promise<HttpService> {
    const port = await freePort();
    const started = this.start(slug, file, { ...options, env: { ...options.env, PORT: String(port) } });
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    const readyUrl = `${url}${options.readyPath ?? '/health'}`;
    for (;;) {
      const todo = /\bTODO: ([\w.]+)/.exec(started.output());
      if (todo) throw new Error(todoMessage(todo[1]!, locationInGradedCode(started.output().slice(todo.index))));
      try {
        const response = await fetch(readyUrl, { signal: AbortSignal.timeout(1_000) });
        if (response.status < 500) return { process: started, port, url };
      } catch {
        // Not listening yet.
      }
      if (!started.running || Date.now() > deadline) {
        const state = started.running ? 'it is still running' : 'it exited';
        throw new Error(`${started.name} never answered ${readyUrl} (${state}).\nIts output was:\n${outputTail(started.output()) || '  (nothing)'}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The processes started so far, oldest first. */
  get all(): readonly LessonProcess[] {
    return this.started;
  }

  /** What every process printed, each under its name: for a failure message. */
  combinedLog(): string {
    return this.started
      .map((p) => `${p.name}${p.running ? '' : ' (exited)'}:\n${outputTail(p.output()) || '  (nothing)'}`)
      .join('\n');
  }

  /** Stops every process, newest first (a gateway before the services behind it). */
  async teardown(): Promise<void> {
    for (const started of this.started.splice(0).reverse()) await started.stop();
  }
}

function describeExit(exit: ProcessExit): string {
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}

/** The last 30 lines of a process's output, indented, for a failure message. */
export function outputTail(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .slice(-30)
    .map((line) => `  ${line}`)
    .join('\n');
}
