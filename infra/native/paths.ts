import { createHash } from 'node:crypto';
import { chownSync, lstatSync, mkdirSync, realpathSync, rmdirSync, symlinkSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { REPO_ROOT, STATE_DIR } from '../../tooling/course/paths.ts';
import { accountIds, run } from './system.ts';
import { ServiceError } from '../errors.ts';

/**
 * Where natively started services keep their data and logs: the git-ignored
 * `.course/services/`, or COURSE_SERVICES_DIR (an absolute path) when set.
 */
export function servicesRoot(): string {
  const configured = process.env.COURSE_SERVICES_DIR;
  return configured ? resolve(configured) : join(STATE_DIR, 'services');
}

export function serviceDir(name: string): string {
  return join(servicesRoot(), name);
}

/** A path as people should read it in messages: relative to the repository when inside it. */
export function displayPath(path: string): string {
  const rel = relative(REPO_ROOT, path);
  return rel && !rel.startsWith('..') ? rel : path;
}

/**
 * Creates a service directory owned by `user` (undefined: the current user) and returns its real
 * path. A service running as another account must be able to reach it; when the repository sits
 * where that account cannot go (a clone under /root, mode 700), the data lives under
 * /var/lib/event-driven-course instead and the usual path becomes a link to it.
 */
export async function prepareServiceDir(name: string, user?: string): Promise<string> {
  const dir = serviceDir(name);
  mkdirSync(servicesRoot(), { recursive: true });
  if (isSymlink(dir)) return realpathSync(dir);
  mkdirSync(dir, { recursive: true });
  if (!user) return dir;

  await chownTo(dir, user);
  if (await userCanWrite(user, dir)) return dir;

  const rootKey = createHash('sha256').update(servicesRoot()).digest('hex').slice(0, 12);
  const fallback = join('/var/lib/event-driven-course', rootKey, name);
  mkdirSync(fallback, { recursive: true, mode: 0o755 });
  await chownTo(fallback, user);
  rmdirSync(dir);
  symlinkSync(fallback, dir);
  return fallback;
}

/** Creates a subdirectory of a service directory with the same owner. */
export async function prepareSubdir(parent: string, name: string, user?: string): Promise<string> {
  const dir = join(parent, name);
  mkdirSync(dir, { recursive: true });
  if (user) await chownTo(dir, user);
  return dir;
}

export async function chownTo(path: string, user: string): Promise<void> {
  const ids = await accountIds(user);
  if (!ids) throw new ServiceError(`the system account "${user}" does not exist (is its Debian package installed?)`);
  chownSync(path, ids.uid, ids.gid);
}

async function userCanWrite(user: string, dir: string): Promise<boolean> {
  const result = await run('runuser', ['-u', user, '--', 'test', '-w', dir, '-a', '-x', dir]);
  return result.code === 0;
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
