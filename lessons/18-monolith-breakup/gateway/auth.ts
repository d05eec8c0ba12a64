import type { Request, RequestHandler } from 'express';
import { jwtVerify } from 'jose';
import type { TokenSettings } from '../platform/config.ts';

export interface AuthOptions extends TokenSettings {
  /** The requests that need no token (signing up, signing in). */
  publicEndpoints: readonly { method: string; path: string }[];
}

/**
 * Authentication at the gateway: every request except the public endpoints needs
 * `Authorization: Bearer <JWT>`, signed with HS256 by the users service (issuer and audience as
 * configured, not expired). A request without one is answered 401 here and never reaches a
 * service. The user it proves goes on as res.locals.userId, which the proxy sends as X-User-Id.
 */
export function authenticate(options: AuthOptions): RequestHandler {
  throw new Error('TODO: authenticate');
}
