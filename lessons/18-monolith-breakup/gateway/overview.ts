import type { RequestHandler } from 'express';
import { callBackend, type BackendAnswer } from './backend.ts';
import type { Router } from './proxy.ts';

export interface OverviewOptions {
  router: Router;
  /** How long to wait for each service. */
  timeoutMs: number;
}

type Section = 'user' | 'orders' | 'payments';

/**
 * GET /me/overview: the signed-in user with their orders and payments, from three services at
 * once. The gateway composes, it does not compute: each section is what its service answered.
 * A service that fails, is down or is slower than the timeout leaves its section null, names
 * it in `unavailable` and marks the answer partial, instead of failing the whole page.
 */
export function createOverviewHandler(options: OverviewOptions): RequestHandler {
  throw new Error('TODO: createOverviewHandler');
}
