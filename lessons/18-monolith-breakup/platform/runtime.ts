import { ConfigError } from './config.ts';

/** On Ctrl-C or a SIGTERM from the platform: close what the process holds, then exit 0. */
export function closeOnShutdown(name: string, close: () => Promise<void>): void {
  const shutdown = (signal: NodeJS.Signals) => {
    console.log(`[${name}] ${signal} received, closing`);
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`[${name}] could not close cleanly: ${describeError(error)}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

/**
 * Runs an entrypoint's start-up: a bad setting or an unreachable dependency ends the process with
 * one line that says what is wrong, not a stack trace (a TODO keeps its stack: it says where).
 */
export async function startOrExit<T>(name: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('TODO:')) {
      console.error(`[${name}] could not start: ${error.stack ?? error.message}`);
    } else {
      console.error(`[${name}] ${error instanceof ConfigError ? 'bad configuration' : 'could not start'}: ${describeError(error)}`);
    }
    process.exit(error instanceof ConfigError ? 2 : 1);
  }
}

export function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return error.errors.map(describeError).join('; ');
  return error instanceof Error ? error.message : String(error);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
