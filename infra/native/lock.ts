import { closeSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from './processes.ts';
import { servicesRoot } from './paths.ts';
import { sleep } from './system.ts';
import { ServiceError } from '../errors.ts';

/**
 * One course process at a time installs or starts services: two check runs started together on a
 * fresh machine must not both run apt-get or both start Redis. The lock is a file holding the
 * owner's pid; a lock whose owner died is taken over.
 */

const WAIT_LIMIT_MS = 15 * 60_000;
/** Calls inside one process wait for each other, per lock. */
const queues = new Map<string, Promise<unknown>>();
const DEFAULT_LOCK = 'starting';

function lockFile(name = DEFAULT_LOCK): string {
  return join(servicesRoot(), `.${name}.lock`);
}

/** The pid of another live process that is installing or starting services right now. */
export function otherStarterPid(): number | undefined {
  const pid = readOwner();
  return pid !== undefined && pid !== process.pid && isAlive(pid) ? pid : undefined;
}

/** Waits while another course process is starting services (so its half-started ones are not used). */
export async function waitForOtherStarter(progress: (message: string) => void): Promise<void> {
  let announced = false;
  const deadline = Date.now() + WAIT_LIMIT_MS;
  for (let pid = otherStarterPid(); pid !== undefined; pid = otherStarterPid()) {
    if (!announced) progress(`waiting for another course process (pid ${pid}) that is starting services…`);
    announced = true;
    if (Date.now() > deadline) throw new ServiceError(`process ${pid} has been starting services for 15 minutes; stop it and retry`);
    await sleep(250);
  }
}

/**
 * Runs `task` holding the lock; calls inside one process are queued, not nested. `name` gives a
 * lock of its own (one per service for containers, so that they start in parallel).
 */
export function withStartLock<T>(progress: (message: string) => void, task: () => Promise<T>, name = DEFAULT_LOCK): Promise<T> {
  const result = (queues.get(name) ?? Promise.resolve()).then(async () => {
    await acquire(progress, name);
    try {
      return await task();
    } finally {
      release(name);
    }
  });
  queues.set(name, result.catch(() => undefined));
  return result;
}

async function acquire(progress: (message: string) => void, name: string): Promise<void> {
  mkdirSync(servicesRoot(), { recursive: true });
  let announced = false;
  const deadline = Date.now() + WAIT_LIMIT_MS;
  for (;;) {
    try {
      const fd = openSync(lockFile(name), 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = readOwner(name);
    if (owner === undefined ? lockIsOld(name) : !isAlive(owner)) {
      removeLock(name);
      continue;
    }
    if (!announced && owner !== undefined) {
      progress(`waiting for another course process (pid ${owner}) that is starting services…`);
      announced = true;
    }
    if (Date.now() > deadline) throw new ServiceError(`another course process holds ${lockFile(name)}; stop it or delete the file`);
    await sleep(250);
  }
}

function release(name: string): void {
  if (readOwner(name) === process.pid) removeLock(name);
}

function readOwner(name = DEFAULT_LOCK): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(lockFile(name), 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A lock file without a pid is one being written right now, unless it has been like that for long. */
function lockIsOld(name: string): boolean {
  try {
    return Date.now() - statSync(lockFile(name)).mtimeMs > 10_000;
  } catch {
    return true;
  }
}

function removeLock(name: string): void {
  try {
    unlinkSync(lockFile(name));
  } catch {
    // already gone
  }
}
