import { format } from 'node:util';

/**
 * Records what console.error prints during one test: how learner code reports a failure it handled
 * (a parked message, a failed job). The output still reaches the terminal, and the original
 * console.error is back once the test has finished.
 */
export function recordConsoleErrors(onTestFinished: (fn: () => void) => void): string[] {
  const lines: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => {
    lines.push(format(...args));
    original(...args);
  };
  onTestFinished(() => {
    console.error = original;
  });
  return lines;
}
