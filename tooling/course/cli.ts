import { ServiceUnavailableError } from '../../infra/services.ts';
import { UsageError } from './args.ts';
import { ManifestError } from './errors.ts';
import { bold, red } from './ui.ts';

/** Exit codes shared by the course commands. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/**
 * Runs a command's main function and turns every expected failure into a short message and an
 * exit code: no stack traces for bad input or a missing service (set COURSE_DEBUG=1 to see them).
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
      const message = error instanceof ManifestError ? error.message : error instanceof Error ? error.message : String(error);
      console.error(`${red('error:')} ${message}`);
      process.exit(EXIT.failed);
    },
  );
}

export function usageText(lines: string[]): string {
  return [bold(lines[0]!), ...lines.slice(1)].join('\n');
}
