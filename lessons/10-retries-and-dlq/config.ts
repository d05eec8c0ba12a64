import type { RetryPolicy } from './retry-policy.ts';

/** A setting a lesson process cannot start with; the message says which and why, in one line. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function requiredEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name]?.trim();
  if (!value) throw new ConfigError(`${name} is not set`);
  return value;
}

/** RETRY_DELAYS_MS="100,300": the wait before each retry, in milliseconds. "" means no retries. */
export function policyFromEnv(name: string, fallback: readonly number[], env: NodeJS.ProcessEnv = process.env): RetryPolicy {
  const raw = env[name];
  if (raw === undefined) return { delaysMs: fallback };
  const parts = raw.split(',').map((part) => part.trim()).filter(Boolean);
  const delaysMs = parts.map(Number);
  if (delaysMs.some((delay) => !Number.isInteger(delay) || delay < 0)) {
    throw new ConfigError(`${name} must be a comma-separated list of whole milliseconds (e.g. "1000,5000"), got "${raw}"`);
  }
  return { delaysMs };
}

export function numberFromEnv(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new ConfigError(`${name} must be a number of 0 or more, got "${raw}"`);
  return value;
}

export function flagFromEnv(name: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return ['1', 'true', 'yes'].includes((env[name] ?? '').trim().toLowerCase());
}

/**
 * Runs a process's main function: a configuration problem is one line and exit code 2, any other
 * failure to start its message and exit code 1, never a stack trace.
 */
export function runMain(name: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`${name}: ${message}`);
    process.exit(error instanceof ConfigError ? 2 : 1);
  });
}
