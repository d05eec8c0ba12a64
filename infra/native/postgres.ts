import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertPortsFree } from '../net.ts';
import { probePostgres, waitUntilReady } from '../probes.ts';
import { SERVICES } from '../services.ts';
import { chownTo, displayPath, prepareSubdir } from './paths.ts';
import { livePidFromFile, stopProcess } from './processes.ts';
import { commandAs, findExecutable, isRoot, launch, runChecked, tailOfFile } from './system.ts';
import { ServiceError } from '../errors.ts';

/**
 * PostgreSQL from the Debian package, as a cluster of our own (initdb + pg_ctl) rather than the
 * package's system cluster: superuser postgres/postgres, TCP on 127.0.0.1 only.
 */

export const POSTGRES_PACKAGE = 'postgresql';
const SUPERUSER = 'postgres';
const PASSWORD = 'postgres';

export interface PostgresNode {
  dir: string;
  port: number;
  user: string | undefined;
}

/** The newest installed server's bin directory (/usr/lib/postgresql/<major>/bin on Debian). */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const majors = readdirSync(root)
      .filter((name) => /^\d+$/.test(name) && existsSync(join(root, name, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (majors[0]) return join(root, majors[0], 'bin');
  }
  const initdb = findExecutable('initdb');
  return initdb ? join(initdb, '..') : undefined;
}

/** PostgreSQL refuses to run as root: as root, the cluster belongs to the package's `postgres` account. */
export function postgresUser(): string | undefined {
  return isRoot() ? 'postgres' : undefined;
}

export function postgresUrl(port: number): string {
  return SERVICES.postgres.urlFor('127.0.0.1', port);
}

export function postgresLogFile(node: PostgresNode): string {
  return join(node.dir, 'logs', 'postgresql.log');
}

export function postgresPid(node: PostgresNode): number | undefined {
  return livePidFromFile(join(node.dir, 'data', 'postmaster.pid'), 'postgres');
}

async function initCluster(node: PostgresNode, bin: string, dataDir: string): Promise<void> {
  // initdb wants an empty directory; one left by an interrupted initdb is started again.
  rmSync(dataDir, { recursive: true, force: true });
  await prepareSubdir(node.dir, 'data', node.user);
  const pwfile = join(node.dir, '.initdb-password');
  writeFileSync(pwfile, `${PASSWORD}\n`, { mode: 0o600 });
  if (node.user) await chownTo(pwfile, node.user);
  try {
    const { command, args } = commandAs(node.user, join(bin, 'initdb'), [
      '-D',
      dataDir,
      '-U',
      SUPERUSER,
      `--pwfile=${pwfile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--no-locale',
    ]);
    await runChecked(command, args, { cwd: node.dir, timeoutMs: 120_000 });
  } finally {
    unlinkSync(pwfile);
  }
  appendFileSync(
    join(dataDir, 'postgresql.conf'),
    [
      '',
      '# Set by the course (infra/native/postgres.ts).',
      "listen_addresses = '127.0.0.1'",
      `port = ${node.port}`,
      '# TCP only: no Unix socket to place or clean up.',
      "unix_socket_directories = ''",
      '# Several check files may each hold a pool at the same time.',
      'max_connections = 200',
      '',
    ].join('\n'),
  );
}

export async function startPostgresNode(node: PostgresNode, timeoutMs = 60_000): Promise<void> {
  const bin = postgresBinDir();
  if (!bin) throw new ServiceError(`PostgreSQL is not installed (apt-get install ${POSTGRES_PACKAGE})`);
  await assertPortsFree([node.port], 'PostgreSQL');
  await prepareSubdir(node.dir, 'logs', node.user);
  const dataDir = join(node.dir, 'data');
  const versionFile = join(dataDir, 'PG_VERSION');
  if (!existsSync(versionFile)) await initCluster(node, bin, dataDir);

  const major = readFileSync(versionFile, 'utf8').trim();
  if (!bin.includes(`/${major}/`) && existsSync('/usr/lib/postgresql')) {
    throw new ServiceError(
      `the course's PostgreSQL data in ${displayPath(dataDir)} is from version ${major}, but ${bin} is installed. ` +
        'Delete that directory (it holds only course data) and run again.',
    );
  }

  const logFile = postgresLogFile(node);
  const { command, args } = commandAs(node.user, join(bin, 'pg_ctl'), ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start']);
  const launcherLog = join(node.dir, 'logs', 'pg_ctl.log');
  const code = await launch(command, args, { logFile: launcherLog, cwd: node.dir });
  if (code !== 0) {
    throw new ServiceError(`pg_ctl start failed (exit ${code}):\n${tailOfFile(launcherLog)}\n${tailOfFile(logFile)}\nIts log: ${displayPath(logFile)}`);
  }
  await waitUntilReady(() => probePostgres(postgresUrl(node.port)), {
    what: `PostgreSQL on 127.0.0.1:${node.port}`,
    timeoutMs,
    logFile: displayPath(logFile),
  });
}

/** Stops the cluster with a fast shutdown (SIGINT: roll back open transactions, checkpoint, exit). */
export async function stopPostgresNode(node: PostgresNode): Promise<boolean> {
  const pid = postgresPid(node);
  if (pid === undefined) return false;
  await stopProcess(pid, 'SIGINT', 30_000);
  return true;
}
