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
let queue: Promise<unknown> = Promise.resolve();

function lockFile(): string {
  return join(servicesRoot(), '.starting.lock');
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

/** Runs `task` holding the lock; calls inside one process are queued, not nested. */
export function withStartLock<T>(progress: (message: string) => void, task: () => Promise<T>): Promise<T> {
  const result = queue.then(async () => {
    await acquire(progress);
    try {
      return await task();
    } finally {
      release();
    }
  });
  queue = result.catch(() => undefined);
  return result;
}

async function acquire(progress: (message: string) => void): Promise<void> {
  mkdirSync(servicesRoot(), { recursive: true });
  let announced = false;
  const deadline = Date.now() + WAIT_LIMIT_MS;
  for (;;) {
    try {
      const fd = openSync(lockFile(), 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = readOwner();
    if (owner === undefined ? lockIsOld() : !isAlive(owner)) {
      removeLock();
      continue;
    }
    if (!announced && owner !== undefined) {
      progress(`waiting for another course process (pid ${owner}) that is starting services…`);
      announced = true;
    }
    if (Date.now() > deadline) throw new ServiceError(`another course process holds ${lockFile()}; stop it or delete the file`);
    await sleep(250);
  }
}

function release(): void {
  if (readOwner() === process.pid) removeLock();
}

function readOwner(): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(lockFile(), 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A lock file without a pid is one being written right now, unless it has been like that for long. */
function lockIsOld(): boolean {
  try {
    return Date.now() - statSync(lockFile()).mtimeMs > 10_000;
  } catch {
    return true;
  }
}

function removeLock(): void {
  try {
    unlinkSync(lockFile());
  } catch {
    // already gone
  }
}
