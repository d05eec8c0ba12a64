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
  const isPublic = (request: Request) => options.publicEndpoints.some((endpoint) => endpoint.method === request.method && endpoint.path === request.path);
  return async (request, response, next) => {
    if (isPublic(request)) {
      next();
      return;
    }
    const token = /^Bearer ([\w-]+\.[\w-]+\.[\w-]+)$/i.exec(request.get('authorization') ?? '')?.[1];
    if (!token) {
      response.status(401).set('www-authenticate', 'Bearer').json({ error: 'a bearer token is required' });
      return;
    }
    try {
      const { payload } = await jwtVerify(token, options.secret, { algorithms: ['HS256'], issuer: options.issuer, audience: options.audience });
      if (typeof payload.sub !== 'string' || payload.sub === '') throw new Error('the token names no subject');
      response.locals.userId = payload.sub;
    } catch {
      response.status(401).set('www-authenticate', 'Bearer error="invalid_token"').json({ error: 'the token is invalid or expired' });
      return;
    }
    next();
  };
}
