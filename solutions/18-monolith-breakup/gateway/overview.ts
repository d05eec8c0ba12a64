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
  return async (_request, response) => {
    const userId = response.locals.userId as string;
    const requestId = response.locals.requestId as string;
    const get = (path: string) => callBackend(options.router, path, { requestId, userId, signal: AbortSignal.timeout(options.timeoutMs) });
    const query = encodeURIComponent(userId);
    const [user, orders, payments] = await Promise.allSettled([
      get(`/users/${query}`),
      get(`/orders?userId=${query}`),
      get(`/payments?userId=${query}`),
    ]);
    if (user.status === 'fulfilled' && user.value.status === 404) {
      response.status(404).json({ error: 'no such user' });
      return;
    }
    const answered = (result: PromiseSettledResult<BackendAnswer>): unknown =>
      result.status === 'fulfilled' && result.value.status === 200 ? result.value.body : null;
    const sections: Record<Section, unknown> = { user: answered(user), orders: answered(orders), payments: answered(payments) };
    const unavailable = (Object.keys(sections) as Section[]).filter((name) => sections[name] === null);
    response.json({ ...sections, partial: unavailable.length > 0, unavailable });
  };
}
