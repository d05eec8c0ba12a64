import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { ServiceError } from '../errors.ts';

/**
 * Running programs for native services: always an executable plus an argument list, never a
 * shell string, so paths with spaces or quotes cannot change what runs.
 */

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

export interface RunResult {
  code: number | null;
  output: string;
}

/** Runs a program to completion and collects stdout and stderr (interleaved). */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.length > 200_000) output = output.slice(-100_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = options.timeoutMs
      ? setTimeout(() => {
          output += `\n(stopped after ${Math.round(options.timeoutMs! / 1000)} s)`;
          child.kill('SIGKILL');
        }, options.timeoutMs)
      : undefined;
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ code: null, output: `${output}${error.message}` });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** Like run(), but a non-zero exit becomes an error that quotes the end of the output. */
export async function runChecked(command: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new ServiceError(`\`${[command, ...args].join(' ')}\` failed (exit ${result.code ?? 'none'}):\n${tail(result.output)}`);
  }
  return result.output;
}

/**
 * Starts a program that puts itself in the background (redis-server --daemonize, pg_ctl start,
 * rabbitmq-server -detached) and waits for the launcher to return. Its output goes to a file
 * rather than a pipe, so a daemon that keeps the descriptors open cannot hold us up.
 */
export function launch(command: string, args: readonly string[], options: RunOptions & { logFile: string }): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const fd = openSync(options.logFile, 'a');
    const child = spawn(command, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    child.once('error', reject);
    child.once('exit', (code) => resolve(code));
  });
}

/**
 * Starts a long-running program in its own process group, detached from ours, with its output
 * appended to a file. Returns its pid; it keeps running after this process ends.
 */
export function spawnDetached(command: string, args: readonly string[], options: RunOptions & { logFile: string }): number {
  const fd = openSync(options.logFile, 'a');
  try {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    if (child.pid === undefined) throw new Error(`could not start ${command}`);
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** The last lines of some output, indented, for error messages. */
export function tail(text: string, lines = 15): string {
  const kept = text.trimEnd().split('\n').slice(-lines);
  return kept.map((line) => `  ${line}`).join('\n');
}

/** The last lines of a log file, or '' when it cannot be read. */
export function tailOfFile(path: string, lines = 15): string {
  try {
    return tail(readFileSync(path, 'utf8'), lines);
  } catch {
    return '';
  }
}

/** The full path of an executable found on PATH (or in the sbin directories), if any. */
export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export function isDebian(): boolean {
  return process.platform === 'linux' && existsSync('/etc/debian_version');
}

/** Numeric ids of a local account, read with `id` so that any name service works. */
export async function accountIds(user: string): Promise<{ uid: number; gid: number } | undefined> {
  const uid = await run('id', ['-u', user]);
  const gid = await run('id', ['-g', user]);
  if (uid.code !== 0 || gid.code !== 0) return undefined;
  return { uid: Number(uid.output.trim()), gid: Number(gid.output.trim()) };
}

/**
 * The command line that runs `command` as `user`. PostgreSQL refuses to run as root and the
 * Debian RabbitMQ packaging expects its own account, so when we are root those services drop to
 * their package's system user; otherwise everything runs as the current user. `runuser` resets
 * HOME, so the environment the program needs is passed through `env` explicitly.
 */
export function commandAs(
  user: string | undefined,
  command: string,
  args: readonly string[],
  env: Record<string, string> = {},
): { command: string; args: string[] } {
  const assignments = Object.entries(env).map(([key, value]) => `${key}=${value}`);
  if (!user) {
    return assignments.length ? { command: 'env', args: [...assignments, command, ...args] } : { command, args: [...args] };
  }
  return { command: 'runuser', args: ['-u', user, '--', 'env', ...assignments, command, ...args] };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
