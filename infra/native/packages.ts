import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { displayPath, servicesRoot } from './paths.ts';
import { findExecutable, isDebian, isRoot, run, tail } from './system.ts';
import { ServiceError } from '../errors.ts';

/** Debian packages: checked by the files they provide, installed in one apt-get run. */

let sudoWorks: Promise<boolean> | undefined;

/** True when apt-get can run here: Debian or Ubuntu, as root or with passwordless sudo. */
export async function canInstallPackages(): Promise<boolean> {
  if (!isDebian() || !findExecutable('apt-get')) return false;
  if (isRoot()) return true;
  if (!findExecutable('sudo')) return false;
  sudoWorks ??= run('sudo', ['-n', 'true'], { timeoutMs: 5_000 }).then((result) => result.code === 0);
  return sudoWorks;
}

export async function installPackages(packages: readonly string[], progress: (message: string) => void): Promise<void> {
  if (packages.length === 0) return;
  if (!(await canInstallPackages())) {
    throw new ServiceError(
      `${packages.join(', ')} ${packages.length === 1 ? 'is' : 'are'} not installed, and this machine cannot install Debian packages ` +
        `without a password.\nInstall ${packages.length === 1 ? 'it' : 'them'}: sudo apt-get install -y ${packages.join(' ')}`,
    );
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const log: string[] = [];
  // As root apt-get runs directly; otherwise through `sudo -n`, which would drop DEBIAN_FRONTEND.
  const apt = async (args: string[]) => {
    const argv = isRoot()
      ? ['apt-get', ...args]
      : ['sudo', '-n', 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...args];
    const result = await run(argv[0]!, argv.slice(1), { env, timeoutMs: 20 * 60_000 });
    log.push(`$ ${argv.join(' ')}\n${result.output}`);
    return result;
  };

  const unknown = await unknownPackages(packages);
  if (unknown.length > 0) {
    progress(`refreshing the Debian package lists (apt-get update) to find ${unknown.join(', ')}…`);
    const update = await apt(['update', '-o', 'DPkg::Lock::Timeout=300']);
    if (update.code !== 0) fail('apt-get update', update.output, log);
  }

  progress(`installing ${packages.join(', ')} from Debian packages (apt-get, may take a minute or two)…`);
  const install = await apt([
    'install',
    '-y',
    '--no-install-recommends',
    '-o',
    'DPkg::Lock::Timeout=300',
    ...packages,
  ]);
  if (install.code !== 0) fail(`apt-get install ${packages.join(' ')}`, install.output, log);
  saveLog(log);
}

/** Packages apt does not know yet (on a fresh machine the package lists may be empty). */
async function unknownPackages(packages: readonly string[]): Promise<string[]> {
  const unknown: string[] = [];
  for (const name of packages) {
    const result = await run('apt-cache', ['policy', name]);
    const candidate = /Candidate:\s*(\S+)/.exec(result.output)?.[1];
    if (result.code !== 0 || !candidate || candidate === '(none)') unknown.push(name);
  }
  return unknown;
}

function fail(what: string, output: string, log: string[]): never {
  const path = saveLog(log);
  throw new ServiceError(`${what} failed:\n${tail(output)}\nFull output: ${displayPath(path)}`);
}

function saveLog(log: string[]): string {
  mkdirSync(servicesRoot(), { recursive: true });
  const path = join(servicesRoot(), 'apt-get.log');
  writeFileSync(path, log.join('\n'));
  return path;
}
