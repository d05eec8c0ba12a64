import { readFileSync } from 'node:fs';
import { sleep } from './system.ts';

/** True while a process with this pid runs (owned by anyone). An exited, unreaped one does not count. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !isZombie(pid);
}

/** Daemons are reparented to init, which may take a while to reap them once they exit. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** The pid written in a pid file, if the file exists and that process still runs `expected`. */
export function livePidFromFile(pidFile: string, expected: string): number | undefined {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidFile, 'utf8').split('\n')[0]!.trim(), 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  // A pid file can outlive its process and the pid be reused: check what runs under it.
  return commandLine(pid).includes(expected) ? pid : undefined;
}

/** The command line of a process, with arguments separated by spaces ('' if unknown). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** Waits until the process is gone, up to timeoutMs; true if it ended. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/**
 * Asks a process to stop with `signal` (each service's graceful shutdown signal) and waits;
 * a process that ignores it for graceMs is killed.
 */
export async function stopProcess(pid: number, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (!signalProcess(pid, signal)) return;
  if (await waitForExit(pid, graceMs)) return;
  signalProcess(pid, 'SIGKILL');
  if (!(await waitForExit(pid, 5_000))) throw new Error(`process ${pid} did not end after SIGKILL`);
}

function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}
