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
 * Runs a process's main function: a configuration problem is one line and exit code 2, a broker
 * that cannot be reached one line and exit code 1, and a bug its stack and exit code 1.
 */
export function runMain(name: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    // Bad settings and an unreachable broker (a socket error has a code such as ECONNREFUSED; kafkajs
    // names its errors KafkaJS…) are one line; a bug in the code, a TODO included, keeps its stack so
    // that it says where it is.
    const brokerError = error instanceof Error && ('code' in error || error.name.startsWith('KafkaJS'));
    if (error instanceof ConfigError || brokerError) console.error(`${name}: ${(error as Error).message}`);
    else console.error(`${name}:`, error);
    process.exit(error instanceof ConfigError ? 2 : 1);
  });
}
