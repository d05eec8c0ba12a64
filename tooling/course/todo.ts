import { relative } from 'node:path';
import { REPO_ROOT, targetRoot } from './paths.ts';

/**
 * Where a TODO (or any error) was thrown in the code under grading: the first `file:line` of a stack
 * trace or a process's output that lies in the graded folder, as the learner should read it
 * (`lessons/01-signup-events/event-bus.ts:30`). Undefined when no frame is in the graded code.
 */
export function locationInGradedCode(text: string | undefined, root = targetRoot()): string | undefined {
  if (!text) return undefined;
  for (const [, path, line] of text.matchAll(/(?:file:\/\/)?(\/[^\s():]+\.ts):(\d+)(?::\d+)?/g)) {
    if (path!.startsWith(`${root}/`)) {
      const rel = relative(REPO_ROOT, path!);
      return `${rel.startsWith('..') ? path : rel}:${line}`;
    }
  }
  return undefined;
}

/** "TODO: EventBus.on", plus where it is thrown when that is known: "TODO: EventBus.on (lessons/…/event-bus.ts:30)". */
export function todoMessage(name: string, where: string | undefined): string {
  return where ? `TODO: ${name} (${where})` : `TODO: ${name}`;
}
