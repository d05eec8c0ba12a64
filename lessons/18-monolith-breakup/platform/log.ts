import { describeError } from './runtime.ts';

/**
 * One line per thing that happened, prefixed with the service and, when there is one, the id of
 * the request it belongs to: `[orders] request=4b1e… POST /orders 201 12ms`. Grep one request id
 * across every service's log and you have the whole story of that request.
 */
export function log(service: string, requestId: string | undefined, message: string): void {
  console.log(`[${service}] ${requestId ? `request=${requestId} ` : ''}${message}`);
}

/** An error with its stack when the code is at fault (a TODO, a bug), with its message otherwise. */
export function logError(service: string, requestId: string | undefined, what: string, error: unknown): void {
  const detail = error instanceof Error && !(error as { expose?: boolean }).expose ? (error.stack ?? error.message) : describeError(error);
  console.error(`[${service}] ${requestId ? `request=${requestId} ` : ''}${what} failed: ${detail}`);
}
