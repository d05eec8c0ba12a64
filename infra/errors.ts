/**
 * A failure the person running the command can act on, whose message says everything (what went
 * wrong, where the log is, what to do): the commands print it without a stack trace. Anything else
 * that escapes is a bug of the course and is printed with its stack.
 */
export class ExpectedError extends Error {
  override name = 'ExpectedError';
}

/** A service could not be installed, started or stopped on this machine. */
export class ServiceError extends ExpectedError {
  override name = 'ServiceError';
}
