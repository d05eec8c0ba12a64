/** On Ctrl-C or a SIGTERM from the platform: finish the entry in hand, close, then exit. */
export function closeOnShutdown(name: string, close: () => Promise<void>): void {
  const shutdown = (signal: NodeJS.Signals) => {
    console.log(`[${name}] ${signal} received, finishing the current entry and closing`);
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`[${name}] could not close cleanly:`, error);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
