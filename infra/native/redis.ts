import { join } from 'node:path';
import { assertPortsFree } from '../net.ts';
import { probeRedis, waitUntilReady } from '../probes.ts';
import { SERVICES } from '../services.ts';
import { displayPath, prepareSubdir } from './paths.ts';
import { livePidFromFile, stopProcess } from './processes.ts';
import { commandAs, findExecutable, isRoot, launch, tailOfFile } from './system.ts';
import { ServiceError } from '../errors.ts';

/** Redis from the Debian package, as a daemon of our own with its data and log in its directory. */

export const REDIS_PACKAGE = 'redis-server';

export interface RedisNode {
  dir: string;
  port: number;
  user: string | undefined;
}

export function redisServerPath(): string | undefined {
  return findExecutable('redis-server');
}

/** As root, Redis runs as the package's `redis` account, like the Debian service does. */
export function redisUser(): string | undefined {
  return isRoot() ? 'redis' : undefined;
}

export function redisLogFile(node: RedisNode): string {
  return join(node.dir, 'logs', 'redis.log');
}

function pidFile(node: RedisNode): string {
  return join(node.dir, 'redis.pid');
}

export function redisPid(node: RedisNode): number | undefined {
  return livePidFromFile(pidFile(node), 'redis-server');
}

export async function startRedisNode(node: RedisNode, timeoutMs = 30_000): Promise<void> {
  const server = redisServerPath();
  if (!server) throw new ServiceError(`Redis is not installed (apt-get install ${REDIS_PACKAGE})`);
  await assertPortsFree([node.port], 'Redis');
  const dataDir = await prepareSubdir(node.dir, 'data', node.user);
  await prepareSubdir(node.dir, 'logs', node.user);
  const logFile = redisLogFile(node);
  const { command, args } = commandAs(node.user, server, [
    '--bind',
    '127.0.0.1',
    '--port',
    String(node.port),
    '--dir',
    dataDir,
    '--logfile',
    logFile,
    '--pidfile',
    pidFile(node),
    '--daemonize',
    'yes',
  ]);
  const launcherLog = join(node.dir, 'logs', 'launcher.log');
  const code = await launch(command, args, { logFile: launcherLog, cwd: dataDir });
  if (code !== 0) {
    throw new ServiceError(`redis-server exited with ${code}:\n${tailOfFile(launcherLog)}${tailOfFile(logFile)}\nIts log: ${displayPath(logFile)}`);
  }
  await waitUntilReady(() => probeRedis(SERVICES.redis.urlFor('127.0.0.1', node.port)), {
    what: `Redis on 127.0.0.1:${node.port}`,
    timeoutMs,
    logFile: displayPath(logFile),
  });
}

/** Stops Redis (SIGTERM: it saves its snapshot and exits). */
export async function stopRedisNode(node: RedisNode): Promise<boolean> {
  const pid = redisPid(node);
  if (pid === undefined) return false;
  await stopProcess(pid, 'SIGTERM', 15_000);
  return true;
}
