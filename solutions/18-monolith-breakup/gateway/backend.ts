import { REQUEST_ID_HEADER, USER_ID_HEADER } from '../platform/http.ts';
import type { Router } from './proxy.ts';

/** A call the gateway makes itself (for the overview), to whichever target the router picks. */
export interface BackendAnswer {
  status: number;
  body: unknown;
  /** Who answered: "monolith" or an instance id. */
  from: string;
}

export class NoTargetError extends Error {
  constructor(path: string) {
    super(`no instance is available for ${path}`);
    this.name = 'NoTargetError';
  }
}

export interface CallOptions {
  requestId: string;
  userId: string;
  /** Aborts the call (and the reading of its body): AbortSignal.timeout(ms) for a deadline. */
  signal?: AbortSignal;
}

/** GETs a path from its target with the request id and the user; rejects on no target, abort or network error. */
export async function callBackend(router: Router, path: string, options: CallOptions): Promise<BackendAnswer> {
  const target = router.targetFor(path);
  if (!target) throw new NoTargetError(path);
  const response = await fetch(new URL(path, target.url), {
    headers: { accept: 'application/json', [REQUEST_ID_HEADER]: options.requestId, [USER_ID_HEADER]: options.userId },
    signal: options.signal,
  });
  const body: unknown = await response.json().catch(() => undefined);
  return { status: response.status, body, from: target.name };
}
