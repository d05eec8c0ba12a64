import { appendFileSync, existsSync, readFileSync } from 'node:fs';

/**
 * What passes between the runner (`npm run lesson`, `grade`, `npm test`) and the test process it
 * starts: environment variables, the journal of requirements, the pid file, and the messages of
 * the IPC reporter. Both sides import these names and shapes from here, and nowhere else.
 */
export const PROTOCOL_ENV = {
  /** The folder holding the `NN-slug/` code to grade (see paths.ts). */
  targetRoot: 'COURSE_TARGET_ROOT',
  /** Comma-separated services the graded lessons declare; the test process starts only these. */
  services: 'COURSE_SERVICES',
  /** "1" when the runner started the test process (progress goes over IPC, not to stdout). */
  runner: 'COURSE_RUNNER',
  /** A file the test process appends the pid of every lesson process it starts to. */
  pidFile: 'COURSE_PID_FILE',
  /** A file the test process appends each requirement's start and end to, synchronously. */
  journalFile: 'COURSE_JOURNAL_FILE',
} as const;

export type ReporterMessage =
  | { type: 'test-end'; id: string; file: string; name: string; state: string; message?: string; where?: string; durationMs: number }
  | { type: 'module-end'; file: string; errors: string[] }
  | { type: 'run-end'; unhandledErrors: string[] }
  | { type: 'progress'; text: string }
  | { type: 'service'; text: string; service: string; url: string }
  | { type: 'collected'; file: string; requirements: number }
  | { type: 'fatal'; text: string };

/** Sends a message to the runner, when there is one listening. */
export function sendToRunner(message: ReporterMessage): void {
  process.send?.(message);
}

export function underRunner(): boolean {
  return process.env[PROTOCOL_ENV.runner] === '1';
}

export type JournalEntry =
  | { event: 'start'; file: string; name: string; at: number }
  | { event: 'end'; file: string; name: string; at: number; state: 'passed' | 'failed' | 'skipped'; message?: string };

/** Appends one journal entry; synchronous, so it is written even when the process then blocks. */
export function appendJournal(file: string, entry: JournalEntry): void {
  appendFileSync(file, `${JSON.stringify(entry)}\n`);
}

/** Requirements started and not ended, and those ended, from a journal. */
export function readJournal(file: string): { open: JournalEntry[]; ended: Array<Extract<JournalEntry, { event: 'end' }>> } {
  if (!existsSync(file)) return { open: [], ended: [] };
  const open = new Map<string, JournalEntry>();
  const ended: Array<Extract<JournalEntry, { event: 'end' }>> = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const entry = JSON.parse(line) as JournalEntry;
    const key = `${entry.file}\0${entry.name}`;
    if (entry.event === 'start') open.set(key, entry);
    else {
      open.delete(key);
      ended.push(entry);
    }
  }
  return { open: [...open.values()], ended };
}

/** Records a started process in the runner's pid file, so a run cut short can kill it. */
export function registerPid(pid: number | undefined): void {
  const file = process.env[PROTOCOL_ENV.pidFile];
  if (file && pid) appendFileSync(file, `${pid}\n`);
}

/** The pids recorded in a pid file. */
export function readPids(file: string): number[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').map(Number).filter((pid) => Number.isInteger(pid) && pid > 0);
}
