import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertPortsFree } from '../net.ts';
import { probeRabbitMq, waitUntilReady } from '../probes.ts';
import { SERVICES } from '../services.ts';
import { chownTo, displayPath, prepareSubdir } from './paths.ts';
import { isAlive, livePidFromFile, stopProcess } from './processes.ts';
import { commandAs, findExecutable, isRoot, spawnDetached, tailOfFile } from './system.ts';
import { ServiceError } from '../errors.ts';

/**
 * RabbitMQ from the Debian package, run as a node of our own: its own name, data, logs, Erlang
 * cookie and config, so it never touches (or is touched by) a system-wide RabbitMQ. The shared
 * course broker and every dedicated broker (see infra/dedicated.ts) are such nodes.
 */

export const RABBITMQ_PACKAGE = 'rabbitmq-server';

export interface RabbitNode {
  /** Node name before the @: "course" runs as course@localhost. */
  name: string;
  /** The node's directory (already created, owned by `user`). */
  dir: string;
  port: number;
  /** Erlang distribution port (the CLI tools talk to the node on it). */
  distPort: number;
  /** The account the node runs as (undefined: the current user). */
  user: string | undefined;
}

/** The real start script; Debian's /usr/sbin wrapper would switch users and reset our settings. */
export function rabbitmqServerPath(): string | undefined {
  const debian = '/usr/lib/rabbitmq/bin/rabbitmq-server';
  if (existsSync(debian)) return debian;
  const onPath = findExecutable('rabbitmq-server');
  return onPath && onPath !== '/usr/sbin/rabbitmq-server' ? onPath : undefined;
}

/** As root, nodes run as the package's `rabbitmq` account, as Debian intends. */
export function rabbitmqUser(): string | undefined {
  return isRoot() ? 'rabbitmq' : undefined;
}

export function rabbitUrl(port: number): string {
  return SERVICES.rabbitmq.urlFor('127.0.0.1', port);
}

export function rabbitLogFile(node: RabbitNode): string {
  return join(node.dir, 'logs', `${node.name}.log`);
}

function pidFile(node: RabbitNode): string {
  return join(node.dir, `${node.name}.pid`);
}

/** The pid of the node's Erlang VM while it runs. */
export function rabbitNodePid(node: RabbitNode): number | undefined {
  return livePidFromFile(pidFile(node), 'beam');
}

/** Writes the node's cookie, plugin list and config (once; they are kept across restarts). */
async function prepareNode(node: RabbitNode): Promise<void> {
  await prepareSubdir(node.dir, 'logs', node.user);
  await prepareSubdir(node.dir, 'mnesia', node.user);
  const files: Array<[string, string, number]> = [
    // The cookie authenticates CLI tools to the node; Erlang insists it is private to its owner.
    ['.erlang.cookie', randomBytes(15).toString('hex').toUpperCase(), 0o400],
    ['enabled_plugins', '[].\n', 0o644],
    ['rabbitmq.conf', '# The course broker: guest/guest, reachable from this machine only.\nloopback_users.guest = true\n', 0o644],
    ['rabbitmq-env.conf', '# Settings come from the environment the course starts the node with.\n', 0o644],
  ];
  for (const [name, content, mode] of files) {
    const path = join(node.dir, name);
    if (existsSync(path)) continue;
    writeFileSync(path, content, { mode });
    if (node.user) await chownTo(path, node.user);
  }
}

function nodeEnvironment(node: RabbitNode): Record<string, string> {
  const dir = node.dir;
  return {
    HOME: dir,
    RABBITMQ_NODENAME: `${node.name}@localhost`,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(node.port),
    RABBITMQ_DIST_PORT: String(node.distPort),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'logs'),
    RABBITMQ_LOGS: rabbitLogFile(node),
    RABBITMQ_PID_FILE: pidFile(node),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    // Several nodes may share two cores: do not pin schedulers to them.
    RABBITMQ_SCHEDULER_BIND_TYPE: 'u',
    // Node-to-node traffic and the port mapper stay on this machine too.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    ERL_EPMD_ADDRESS: '127.0.0.1',
  };
}

/**
 * Starts the node in the background and waits until it accepts AMQP connections. The start script
 * runs in the foreground of a detached process group (not with -detached), so that whatever the
 * node prints before its log is open, a config error for instance, lands in logs/startup.log.
 */
export async function startRabbitNode(node: RabbitNode, timeoutMs = 90_000): Promise<void> {
  const server = rabbitmqServerPath();
  if (!server) throw new ServiceError(`RabbitMQ is not installed (apt-get install ${RABBITMQ_PACKAGE})`);
  await assertPortsFree([node.port, node.distPort], `RabbitMQ node ${node.name}`);
  await prepareNode(node);
  const logFile = rabbitLogFile(node);
  const startupLog = join(node.dir, 'logs', 'startup.log');
  writeFileSync(startupLog, '');
  const { command, args } = commandAs(node.user, server, [], nodeEnvironment(node));
  const launcher = spawnDetached(command, args, { logFile: startupLog, cwd: node.dir });
  try {
    await waitUntilReady(() => probeRabbitMq(rabbitUrl(node.port)), {
      what: `RabbitMQ node ${node.name} on 127.0.0.1:${node.port}`,
      timeoutMs,
      logFile: `${displayPath(logFile)} (console: ${displayPath(startupLog)})`,
      alive: () => isAlive(launcher),
    });
  } catch (error) {
    const console = tailOfFile(startupLog);
    throw new ServiceError(`${error instanceof Error ? error.message : String(error)}${console ? `\n${console}` : ''}`);
  }
}

/** Stops the node gracefully (SIGTERM makes RabbitMQ close queues and flush to disk). */
export async function stopRabbitNode(node: RabbitNode): Promise<boolean> {
  const pid = rabbitNodePid(node);
  if (pid === undefined) return false;
  await stopProcess(pid, 'SIGTERM', 30_000);
  return true;
}
