/** Polls until `done` holds or the deadline passes, and says which (for a check that reports either way). */
export async function eventually(done: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await done()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * The outcome of `work`, or a failure with `message` when it has not settled within `ms`: a hang
 * becomes a failure that says what was waited for, not a test timeout.
 */
export async function within<T>(ms: number, work: Promise<T>, message: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(typeof message === 'string' ? message : message())), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
