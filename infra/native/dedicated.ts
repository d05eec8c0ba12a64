import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../net.ts';
import { PROBES } from '../probes.ts';
import { SERVICES, type ServiceName } from '../services.ts';
import { COURSE_SERVICES } from './course-services.ts';
import { etcdPid, startEtcdNode, stopEtcdNode, type EtcdNode } from './etcd.ts';
import { ensureKafkaJars, kafkaPid, startKafkaNode, stopKafkaNode, type KafkaNode } from './kafka.ts';
import { withStartLock } from './lock.ts';
import { installPackages } from './packages.ts';
import { prepareServiceDir, serviceDir } from './paths.ts';
import { postgresPid, postgresUser, startPostgresNode, stopPostgresNode, type PostgresNode } from './postgres.ts';
import { isAlive, waitForExit } from './processes.ts';
import { rabbitmqUser, rabbitNodePid, startRabbitNode, stopRabbitNode, type RabbitNode } from './rabbitmq.ts';
import { redisPid, redisUser, startRedisNode, stopRedisNode, type RedisNode } from './redis.ts';

/**
 * Private instances of any service on this machine, beside the shared ones: their own ports and
 * data in `.course/services/dedicated/<service>-<id>/`. A check may stop, kill and restart its own
 * instance without disturbing the checks that use the shared one.
 *
 * Released instances that still run are kept warm: the next check that asks for the same service
 * claims one instead of waiting for a fresh start (at most WARM_LIMIT per service).
 */

const DEDICATED_DIR = 'dedicated';
const INSTANCE_FILE = 'instance.json';
const OWNER_FILE = 'owner.pid';
const FREE_FILE = 'free';
const WARM_LIMIT = 2;
/** A directory with neither owner nor free marker is being created or claimed; older than this, it is debris. */
const DEBRIS_AGE_MS = 5 * 60_000;

interface InstanceRecord {
  service: ServiceName;
  id: string;
  ports: number[];
}

/** How one service's private node is built, started, stopped and found. */
interface NodeKind<N> {
  portCount: number;
  user(): string | undefined;
  node(dir: string, record: InstanceRecord): N;
  start(node: N, progress: (message: string) => void): Promise<void>;
  /** Graceful stop with the service's own shutdown signal; data kept. */
  stop(node: N): Promise<unknown>;
  pid(node: N): number | undefined;
  port(node: N): number;
}

const redisKind: NodeKind<RedisNode> = {
  portCount: 1,
  user: redisUser,
  node: (dir, { ports: [port] }) => ({ dir, port: port!, user: redisUser() }),
  start: (node) => startRedisNode(node),
  stop: stopRedisNode,
  pid: redisPid,
  port: (node) => node.port,
};

const rabbitKind: NodeKind<RabbitNode> = {
  portCount: 2,
  user: rabbitmqUser,
  node: (dir, { id, ports: [port, distPort] }) => ({ name: `course-dedicated-${id}`, dir, port: port!, distPort: distPort!, user: rabbitmqUser() }),
  start: (node) => startRabbitNode(node, 60_000),
  stop: stopRabbitNode,
  pid: rabbitNodePid,
  port: (node) => node.port,
};

const kafkaKind: NodeKind<KafkaNode> = {
  portCount: 2,
  user: () => undefined,
  node: (dir, { ports: [port, controllerPort] }) => ({ dir, port: port!, controllerPort: controllerPort! }),
  start: async (node, progress) => startKafkaNode(node, await ensureKafkaJars(progress)),
  stop: stopKafkaNode,
  pid: kafkaPid,
  port: (node) => node.port,
};

const postgresKind: NodeKind<PostgresNode> = {
  portCount: 1,
  user: postgresUser,
  node: (dir, { ports: [port] }) => ({ dir, port: port!, user: postgresUser() }),
  start: (node) => startPostgresNode(node),
  stop: stopPostgresNode,
  pid: postgresPid,
  port: (node) => node.port,
};

const etcdKind: NodeKind<EtcdNode> = {
  portCount: 2,
  user: () => undefined,
  node: (dir, { ports: [port, peerPort] }) => ({ dir, port: port!, peerPort: peerPort! }),
  start: (node) => startEtcdNode(node),
  stop: stopEtcdNode,
  pid: etcdPid,
  port: (node) => node.port,
};

// Each kind is used only with the nodes it builds; the table erases the node type.
const KINDS = { redis: redisKind, rabbitmq: rabbitKind, kafka: kafkaKind, postgres: postgresKind, etcd: etcdKind } as unknown as Record<
  ServiceName,
  NodeKind<object>
>;

export interface NativeDedicated {
  url: string;
  /** Stops the service; `kill` is a crash (SIGKILL), otherwise its graceful shutdown. Data is kept. */
  stop(options?: { kill?: boolean }): Promise<void>;
  /** Starts it again on the same port; resolves once it answers its protocol. */
  start(): Promise<void>;
  /** Hands the instance back: kept warm for the next check when it runs, deleted otherwise. */
  release(): Promise<void>;
  /** Deletes the instance and its data. */
  discard(): Promise<void>;
  /** Where its log is, for messages. */
  detail: string;
}

/** Instances this process owns, killed if it exits without releasing them. */
const owned = new Map<string, { kind: NodeKind<object>; node: object }>();
let exitHookInstalled = false;

function root(): string {
  return serviceDir(DEDICATED_DIR);
}

export async function startNativeDedicated(service: ServiceName, progress: (message: string) => void): Promise<NativeDedicated> {
  const missing = COURSE_SERVICES[service].missingPackages();
  if (missing.length > 0) {
    await withStartLock(progress, async () => {
      const stillMissing = COURSE_SERVICES[service].missingPackages();
      if (stillMissing.length > 0) {
        await installPackages(stillMissing, progress);
        await COURSE_SERVICES[service].afterInstall?.();
      }
    });
  }
  removeAbandonedInstances();
  const kind = KINDS[service];
  const warm = await claimWarmInstance(service);
  if (warm) return handle(kind, warm.dir, warm.record, progress);

  const record: InstanceRecord = { service, id: randomBytes(4).toString('hex'), ports: [] };
  for (let i = 0; i < kind.portCount; i++) record.ports.push(await freePort());
  const name = join(DEDICATED_DIR, `${service}-${record.id}`);
  const dir = await prepareServiceDir(name, kind.user());
  writeFileSync(join(dir, INSTANCE_FILE), `${JSON.stringify(record)}\n`);
  writeFileSync(join(dir, OWNER_FILE), `${process.pid}\n`);
  const node = kind.node(dir, record);
  own(serviceDir(name), kind, node);

  progress(`starting a private ${SERVICES[service].label} on 127.0.0.1:${kind.port(node)}…`);
  try {
    await kind.start(node, progress);
  } catch (error) {
    await discardInstance(serviceDir(name), kind, node);
    throw error;
  }
  return handle(kind, serviceDir(name), record, progress);
}

function handle(kind: NodeKind<object>, home: string, record: InstanceRecord, progress: (message: string) => void): NativeDedicated {
  const node = kind.node(realPath(home), record);
  own(home, kind, node);
  // Stop, start and release may be called from several places at once: one operation at a time.
  let pending: Promise<void> = Promise.resolve();
  const serialize = (operation: () => Promise<void>) => {
    const next = pending.then(operation);
    pending = next.catch(() => {});
    return next;
  };
  return {
    url: SERVICES[record.service].urlFor('127.0.0.1', kind.port(node)),
    detail: `private instance in ${home}`,
    stop: (options = {}) =>
      serialize(async () => {
        const pid = kind.pid(node);
        if (pid === undefined) return;
        if (options.kill) {
          process.kill(pid, 'SIGKILL');
          await waitForExit(pid, 10_000);
          // A service that finds its old pid still taken refuses to start (PostgreSQL's postmaster.pid):
          // wait until the killed process is reaped too, not only dead.
          await waitUntilReaped(pid, 10_000);
        } else {
          await kind.stop(node);
        }
      }),
    start: () =>
      serialize(async () => {
        if (kind.pid(node) !== undefined) return;
        await kind.start(node, progress);
      }),
    release: () =>
      serialize(async () => {
        const running = kind.pid(node) !== undefined;
        const answers = running && (await PROBES[record.service](SERVICES[record.service].urlFor('127.0.0.1', kind.port(node))).then(() => true, () => false));
        if (answers && warmCount(record.service) < WARM_LIMIT) {
          owned.delete(home);
          writeFileSync(join(home, FREE_FILE), '');
          rmSync(join(home, OWNER_FILE), { force: true });
        } else {
          await discardInstance(home, kind, node);
        }
      }),
    discard: () => serialize(() => discardInstance(home, kind, node)),
  };
}

async function waitUntilReaped(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function own(home: string, kind: NodeKind<object>, node: object): void {
  owned.set(home, { kind, node });
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const [dir, instance] of owned) {
      const pid = instance.kind.pid(instance.node);
      if (pid !== undefined) process.kill(pid, 'SIGKILL');
      removeDir(dir);
    }
  });
}

/** Claims a released instance of the service that still answers, if there is one. */
async function claimWarmInstance(service: ServiceName): Promise<{ dir: string; record: InstanceRecord } | undefined> {
  for (const { dir, record } of instances()) {
    if (record.service !== service || !existsSync(join(dir, FREE_FILE))) continue;
    const claim = join(dir, `claim.${process.pid}`);
    try {
      // rename is atomic: of two processes claiming the same instance, one wins.
      renameSync(join(dir, FREE_FILE), claim);
    } catch {
      continue;
    }
    writeFileSync(join(dir, OWNER_FILE), `${process.pid}\n`);
    unlinkSync(claim);
    const kind = KINDS[service];
    const node = kind.node(realPath(dir), record);
    const url = SERVICES[service].urlFor('127.0.0.1', kind.port(node));
    if (kind.pid(node) !== undefined && (await PROBES[service](url).then(() => true, () => false))) return { dir, record };
    await discardInstance(dir, kind, node);
  }
  return undefined;
}

function warmCount(service: ServiceName): number {
  return instances().filter(({ dir, record }) => record.service === service && existsSync(join(dir, FREE_FILE))).length;
}

function instances(): Array<{ dir: string; record: InstanceRecord }> {
  if (!existsSync(root())) return [];
  const found: Array<{ dir: string; record: InstanceRecord }> = [];
  for (const entry of readdirSync(root())) {
    const dir = join(root(), entry);
    const record = readRecord(dir);
    if (record) found.push({ dir, record });
  }
  return found;
}

/** The private instances there are now, for `npm run infra -- status`. */
export function listNativeDedicated(): Array<{ service: ServiceName; url: string; state: 'in use' | 'warm' | 'stopped' }> {
  return instances().map(({ dir, record }) => {
    const kind = KINDS[record.service];
    const node = kind.node(realPath(dir), record);
    const running = kind.pid(node) !== undefined;
    const state = !running ? 'stopped' : existsSync(join(dir, FREE_FILE)) ? 'warm' : 'in use';
    return { service: record.service, url: SERVICES[record.service].urlFor('127.0.0.1', kind.port(node)), state };
  });
}

async function discardInstance(home: string, kind: NodeKind<object>, node: object): Promise<void> {
  owned.delete(home);
  const pid = kind.pid(node);
  if (pid !== undefined) {
    // Its data is being deleted, so no graceful shutdown is needed.
    process.kill(pid, 'SIGKILL');
    await waitForExit(pid, 10_000);
  }
  removeDir(home);
}

/**
 * Removes instances whose owning check process is gone (killed before it could clean up) and
 * debris of interrupted starts; with `everything` (`npm run infra -- down`), all of them, warm
 * ones included. Returns how many were removed.
 */
export function removeAbandonedInstances(everything = false): number {
  if (!existsSync(root())) return 0;
  let removed = 0;
  for (const entry of readdirSync(root())) {
    const dir = join(root(), entry);
    const record = readRecord(dir);
    const owner = Number.parseInt(readText(join(dir, OWNER_FILE)), 10);
    const free = existsSync(join(dir, FREE_FILE));
    const claimed = readdirSafe(dir).some((name) => name.startsWith('claim.'));
    const debris = (!record || (Number.isNaN(owner) && !free && !claimed)) && ageMs(dir) > DEBRIS_AGE_MS;
    const abandoned = !Number.isNaN(owner) && !isAlive(owner);
    if (!everything && !debris && !abandoned) continue;
    if (record) {
      const kind = KINDS[record.service];
      const pid = kind.pid(kind.node(realPath(dir), record));
      if (pid !== undefined) process.kill(pid, 'SIGKILL');
    }
    removeDir(dir);
    removed += 1;
  }
  return removed;
}

function readRecord(dir: string): InstanceRecord | undefined {
  try {
    const parsed = JSON.parse(readFileSync(join(dir, INSTANCE_FILE), 'utf8')) as InstanceRecord;
    return parsed.service in KINDS && Array.isArray(parsed.ports) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Removes an instance's directory, and the directory it links to when its data lives elsewhere. */
function removeDir(path: string): void {
  const real = realPath(path);
  rmSync(real, { recursive: true, force: true });
  rmSync(path, { recursive: true, force: true });
}

function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}
