import { ServiceUnavailableError } from '../../infra/services.ts';
import { UsageError } from './args.ts';
import { ExpectedError } from '../../infra/errors.ts';
import { bold, red } from './ui.ts';

/** Exit codes shared by the course commands. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/**
 * Runs a command's main function and turns every expected failure (bad input, a missing service,
 * a broken manifest) into a short message and an exit code, without a stack trace (set
 * COURSE_DEBUG=1 to see it). An unexpected error is a bug of the course: it shows its stack.
 */
export function runCommand(usage: string, main: () => Promise<number>): void {
  // Ctrl-C: exit through process.exit so that 'exit' handlers stop whatever this command started.
  process.once('SIGINT', () => process.exit(130));
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      if (process.env.COURSE_DEBUG) console.error(error);
      if (error instanceof UsageError) {
        console.error(`${red('error:')} ${error.message}\n\n${usage}`);
        process.exit(EXIT.usage);
      }
      if (error instanceof ServiceUnavailableError) {
        console.error(`${red('error:')} ${error.message}`);
        process.exit(EXIT.failed);
      }
      if (error instanceof ExpectedError) {
        console.error(`${red('error:')} ${error.message}`);
        process.exit(EXIT.failed);
      }
      console.error(`${red('internal error')} (please report it with the output below):`);
      console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
      process.exit(EXIT.failed);
    },
  );
}

export function usageText(lines: string[]): string {
  return [bold(lines[0]!), ...lines.slice(1)].join('\n');
}
