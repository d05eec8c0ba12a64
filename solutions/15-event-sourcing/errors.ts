/**
 * An append was refused because the stream is not at the version the writer read: someone else
 * appended in between. The writer's decision was made on a stale state; reload and decide again
 * (or tell the user), never retry the same events blindly.
 */
export class WrongExpectedVersionError extends Error {
  override readonly name = 'WrongExpectedVersionError';

  constructor(
    readonly streamId: string,
    /** The version the writer based its decision on (0: "the stream must not exist yet"). */
    readonly expectedVersion: number,
    /** The version the stream was at when the append was refused (0: it has no events). */
    readonly actualVersion: number,
  ) {
    super(`stream "${streamId}" is at version ${actualVersion}, not at the expected version ${expectedVersion}`);
  }
}

/** A command that the account's current state does not allow (not open, insufficient funds…). */
export class AccountError extends Error {
  override readonly name = 'AccountError';
}
