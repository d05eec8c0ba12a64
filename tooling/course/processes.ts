import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { STATE_DIR } from './paths.ts';
import { readPids } from './protocol.ts';

/** Every process below `rootPid`, deepest first, from the operating system's process table. */
function descendantsOf(rootPid: number): number[] {
  let table: string;
  try {
    table = execFileSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8' });
  } catch {
    return [];
  }
  const children = new Map<number, number[]>();
  for (const line of table.split('\n')) {
    const [pid, ppid] = line.trim().split(/\s+/).map(Number);
    if (!pid || ppid === undefined) continue;
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const found: number[] = [];
  const visit = (pid: number) => {
    for (const child of children.get(pid) ?? []) {
      visit(child);
      found.push(child);
    }
  };
  visit(rootPid);
  return found;
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * A file where checks record the pids of the learner processes they start, so that whatever a
 * run leaves behind (a hang, Ctrl-C) can be ended even after its parent is gone.
 */
export class PidRegistry {
  readonly file: string;

  constructor() {
    const dir = join(STATE_DIR, 'run');
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, `${process.pid}-${randomUUID()}.pids`);
    rmSync(this.file, { force: true });
  }

  /** Kills the recorded processes, and `root` with everything still running below it. */
  killAll(root?: number): void {
    const recorded = readPids(this.file);
    const tree = root === undefined ? [] : [...descendantsOf(root), root];
    for (const pid of [...tree, ...recorded]) killQuietly(pid);
    rmSync(this.file, { force: true });
  }
}
