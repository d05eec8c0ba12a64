import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../net.ts';
import { withStartLock } from './lock.ts';
import { installPackages } from './packages.ts';
import { prepareServiceDir, serviceDir } from './paths.ts';
import { isAlive, livePidFromFile } from './processes.ts';
import {
  RABBITMQ_PACKAGE,
  rabbitmqServerPath,
  rabbitmqUser,
  rabbitNodePid,
  rabbitUrl,
  startRabbitNode,
  stopRabbitNode,
  type RabbitNode,
} from './rabbitmq.ts';

/**
 * A RabbitMQ node for one check only, beside the shared one: its own name, ports and data in
 * `.course/services/dedicated/rabbitmq-<id>/`. A check may restart it without disturbing others.
 */

const DEDICATED_DIR = 'dedicated';
const OWNER_FILE = 'owner.pid';
const live = new Map<string, RabbitNode>();
let exitHookInstalled = false;

export interface NativeDedicatedRabbit {
  url: string;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startNativeDedicatedRabbit(progress: (message: string) => void): Promise<NativeDedicatedRabbit> {
  if (!rabbitmqServerPath()) {
    await withStartLock(progress, async () => {
      if (!rabbitmqServerPath()) await installPackages([RABBITMQ_PACKAGE], progress);
    });
  }
  removeAbandonedNodes();

  const id = randomBytes(4).toString('hex');
  const user = rabbitmqUser();
  const home = serviceDir(join(DEDICATED_DIR, `rabbitmq-${id}`));
  const dir = await prepareServiceDir(join(DEDICATED_DIR, `rabbitmq-${id}`), user);
  writeFileSync(join(dir, OWNER_FILE), `${process.pid}\n`);
  const node: RabbitNode = { name: `course-dedicated-${id}`, dir, port: await freePort(), distPort: await freePort(), user };
  live.set(home, node);
  installExitHook();

  progress(`starting a dedicated RabbitMQ node on 127.0.0.1:${node.port}…`);
  try {
    await startRabbitNode(node, 60_000);
  } catch (error) {
    await discard(home, node);
    throw error;
  }

  // Restart and stop may be called from several places at once: one operation at a time.
  let pending: Promise<void> = Promise.resolve();
  const serialize = (operation: () => Promise<void>) => {
    const next = pending.then(operation);
    pending = next.catch(() => {});
    return next;
  };
  return {
    url: rabbitUrl(node.port),
    restart: () =>
      serialize(async () => {
        await stopRabbitNode(node);
        await startRabbitNode(node, 60_000);
      }),
    stop: () => serialize(() => discard(home, node)),
  };
}

/** Kills the node (its data is being deleted, so no graceful shutdown is needed) and removes it. */
async function discard(home: string, node: RabbitNode): Promise<void> {
  live.delete(home);
  const pid = rabbitNodePid(node);
  if (pid !== undefined) {
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 5_000;
    while (isAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
  }
  removeNodeDir(home);
}

/** Removes a node's directory, and the link to it when it lives outside the repository. */
function removeNodeDir(path: string): void {
  let real = path;
  try {
    real = realpathSync(path);
  } catch {
    // already gone
  }
  rmSync(real, { recursive: true, force: true });
  rmSync(path, { recursive: true, force: true });
}

/** If the check process ends without calling stop(), its nodes go with it. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const [home, node] of live) {
      const pid = rabbitNodePid(node);
      if (pid !== undefined) process.kill(pid, 'SIGKILL');
      removeNodeDir(home);
    }
  });
}

/**
 * Removes dedicated nodes whose check process is gone (killed before it could clean up), or all
 * of them with `everything` (`npm run infra -- down`). Returns how many were removed.
 */
export function removeAbandonedNodes(everything = false): number {
  const root = serviceDir(DEDICATED_DIR);
  if (!existsSync(root)) return 0;
  let removed = 0;
  for (const entry of readdirSync(root)) {
    const dir = join(root, entry);
    const owner = Number.parseInt(readText(join(dir, OWNER_FILE)), 10);
    if (!everything && (Number.isNaN(owner) || isAlive(owner))) continue;
    const id = entry.replace(/^rabbitmq-/, '');
    const pid = livePidFromFile(join(dir, `course-dedicated-${id}.pid`), 'beam');
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
    removeNodeDir(dir);
    removed += 1;
  }
  return removed;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}
