/** Small plumbing shared by this lesson's runnable services. */

/** An onError reporter that prints one clear line per failed message and keeps the service running. */
export function reportErrors(service: string) {
  return (error: unknown, { channel }: { channel: string }): void => {
    const reason = error instanceof Error ? error.message : String(error);
    console.error(`${service}: skipped a message on ${channel}: ${reason}`);
  };
}

/** On Ctrl-C or a SIGTERM from the platform: close connections, then exit. */
export function closeOnShutdown(service: string, close: () => Promise<void>): void {
  const shutdown = (signal: NodeJS.Signals) => {
    console.log(`${service}: ${signal} received, closing`);
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`${service}: could not close cleanly:`, error);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}
