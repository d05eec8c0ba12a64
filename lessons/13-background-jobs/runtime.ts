/** Small plumbing shared by this lesson's two processes. */

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Reads the configuration, or explains in one line what is wrong with it and exits. */
export function configOrExit<T>(name: string, load: () => T): T {
  try {
    return load();
  } catch (error) {
    console.error(`[${name}] cannot start: ${describeError(error)}`);
    process.exit(2);
  }
}

/** On Ctrl-C or a SIGTERM from the platform: close, then exit. A second signal exits at once. */
export function closeOnShutdown(name: string, close: () => Promise<void>): void {
  let closing = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (closing) process.exit(1);
    closing = true;
    console.log(`[${name}] ${signal} received, closing`);
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`[${name}] could not close cleanly: ${describeError(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}
