import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertPortsFree } from '../net.ts';
import { probeEtcd, waitUntilReady } from '../probes.ts';
import { SERVICES } from '../services.ts';
import { displayPath } from './paths.ts';
import { isAlive, livePidFromFile, stopProcess } from './processes.ts';
import { findExecutable, isRoot, run, spawnDetached } from './system.ts';
import { ServiceError } from '../errors.ts';

/**
 * etcd from the Debian package (3.4 on Debian 12), as a single-member cluster of our own: its own
 * name, data and log, client and peer URLs on 127.0.0.1 only. The package's system service
 * (/var/lib/etcd, started by systemd after the install) is masked, never used.
 */

export const ETCD_PACKAGE = 'etcd-server';

export interface EtcdNode {
  /** The member's directory: data/, logs/, etcd.pid. */
  dir: string;
  /** Client port (the one the course connects to). */
  port: number;
  /** Peer port (Raft between members; a single member still listens on it). */
  peerPort: number;
}

export function etcdServerPath(): string | undefined {
  return findExecutable('etcd');
}

export function etcdLogFile(node: EtcdNode): string {
  return join(node.dir, 'logs', 'etcd.log');
}

function pidFile(node: EtcdNode): string {
  return join(node.dir, 'etcd.pid');
}

export function etcdPid(node: EtcdNode): number | undefined {
  return livePidFromFile(pidFile(node), 'etcd');
}

/** etcd 3.4 refuses to start on other architectures than amd64 and ppc64le unless told. */
function architectureEnv(): Record<string, string> {
  if (process.arch === 'x64' || process.arch === 'ppc64') return {};
  return { ETCD_UNSUPPORTED_ARCH: process.arch === 'ia32' ? '386' : process.arch };
}

/** Starts the member in the background and resolves once it has a leader and serves reads. */
export async function startEtcdNode(node: EtcdNode, timeoutMs = 30_000): Promise<void> {
  const server = etcdServerPath();
  if (!server) throw new ServiceError(`etcd is not installed (apt-get install ${ETCD_PACKAGE})`);
  await assertPortsFree([node.port, node.peerPort], 'etcd');
  const dataDir = join(node.dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  // etcd wants its data directory private to its owner (it warns about anything wider).
  chmodSync(dataDir, 0o700);
  mkdirSync(join(node.dir, 'logs'), { recursive: true });
  const client = `http://127.0.0.1:${node.port}`;
  const peer = `http://127.0.0.1:${node.peerPort}`;
  const pid = spawnDetached(
    server,
    [
      '--name',
      'course',
      '--data-dir',
      dataDir,
      '--listen-client-urls',
      client,
      '--advertise-client-urls',
      client,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `course=${peer}`,
    ],
    { cwd: node.dir, logFile: etcdLogFile(node), env: { ...process.env, ...architectureEnv() } },
  );
  writeFileSync(pidFile(node), `${pid}\n`);
  await waitUntilReady(() => probeEtcd(SERVICES.etcd.urlFor('127.0.0.1', node.port)), {
    what: `etcd on 127.0.0.1:${node.port}`,
    timeoutMs,
    logFile: displayPath(etcdLogFile(node)),
    alive: () => isAlive(pid),
  });
}

/** Stops the member (SIGTERM: it closes its WAL and exits). */
export async function stopEtcdNode(node: EtcdNode): Promise<boolean> {
  const pid = etcdPid(node);
  if (pid === undefined) return false;
  await stopProcess(pid, 'SIGTERM', 15_000);
  return true;
}

/**
 * After apt-get installed etcd-server: on a machine run by systemd the package has just started
 * and enabled its own etcd on 127.0.0.1:2379; mask it (stopped now, never started again), so
 * the port is the course's. Elsewhere (containers, policy-rc.d) nothing was started.
 */
export async function maskPackageService(): Promise<void> {
  if (!existsSync('/run/systemd/system') || !findExecutable('systemctl')) return;
  const argv = isRoot() ? ['systemctl'] : ['sudo', '-n', 'systemctl'];
  const result = await run(argv[0]!, [...argv.slice(1), 'mask', '--now', 'etcd.service'], { timeoutMs: 60_000 });
  if (result.code !== 0) {
    throw new ServiceError(`could not stop the etcd service of the Debian package (systemctl mask --now etcd.service):\n${result.output.trim()}`);
  }
}
