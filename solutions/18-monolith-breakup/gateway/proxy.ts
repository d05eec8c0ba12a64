import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createProxyMiddleware, fixRequestBody } from 'http-proxy-middleware';
import { REQUEST_ID_HEADER, USER_ID_HEADER } from '../platform/http.ts';
import { logError } from '../platform/log.ts';
import type { RegistryView } from './registry-view.ts';
import { routeFor } from './routes.ts';

/** Where one request goes: the monolith, or one instance of the service that owns the path. */
export interface Target {
  /** "monolith", or the instance's id. */
  name: string;
  url: string;
}

export interface Router {
  /** The target for a full path ("/orders/42?x=1"); undefined when its service has no instance now. */
  targetFor(path: string): Target | undefined;
}

/**
 * The strangler fig and the load balancing in one place: a path whose route is switched to
 * "service" goes to the instances of its service in turn (round robin), any other to the monolith.
 * It reads only the registry view, which the watches keep current.
 */
export function createRouter(view: RegistryView, monolithUrl: string): Router {
  const turns = new Map<string, number>();
  return {
    targetFor(path) {
      const route = routeFor(path);
      if (!route) return undefined;
      if (view.switchOf(route.name) !== 'service') return { name: 'monolith', url: monolithUrl };
      const instances = view.instances(route.service);
      if (instances.length === 0) return undefined;
      const turn = turns.get(route.service) ?? 0;
      turns.set(route.service, turn + 1);
      const instance = instances[turn % instances.length]!;
      return { name: instance.instanceId, url: instance.url };
    },
  };
}

/**
 * Proxies a request to its target with http-proxy-middleware, untouched: the full original path
 * (Express strips the mount path from req.url, so it is put back from req.originalUrl), the body
 * as it streams in, the request id, and the user the gateway authenticated (never a client's
 * own X-User-Id). A target that does not answer gives 502, no target at all 503.
 */
export function createProxy(router: Router, gatewayName: string): RequestHandler {
  const targets = new WeakMap<IncomingMessage, Target>();
  const proxy = createProxyMiddleware<Request, Response>({
    router: (request) => targets.get(request)!.url,
    pathRewrite: (_path, request) => request.originalUrl,
    xfwd: true,
    proxyTimeout: 10_000,
    on: {
      proxyReq(proxyRequest: ClientRequest, request: Request, response: Response) {
        proxyRequest.removeHeader(USER_ID_HEADER);
        const userId: unknown = response.locals.userId;
        if (typeof userId === 'string') proxyRequest.setHeader(USER_ID_HEADER, userId);
        const requestId: unknown = response.locals.requestId;
        if (typeof requestId === 'string') proxyRequest.setHeader(REQUEST_ID_HEADER, requestId);
        // Only does something if a body parser ran before the proxy: then it writes the parsed body again.
        fixRequestBody(proxyRequest, request);
      },
      error(error: Error, request: IncomingMessage, response: ServerResponse | Socket) {
        const target = targets.get(request);
        logError(gatewayName, undefined, `proxying ${request.method} ${request.url} to ${target?.name ?? 'nobody'}`, error);
        if (!('setHeader' in response) || response.headersSent) {
          response.destroy();
          return;
        }
        response.writeHead(502, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: `${target?.name ?? 'the service'} did not answer` }));
      },
    },
  });
  return (request: Request, response: Response, next: NextFunction) => {
    const target = router.targetFor(request.originalUrl);
    if (!target) {
      const route = routeFor(request.originalUrl);
      response.status(503).json({ error: `no instance of ${route?.service ?? 'the service'} is available` });
      return;
    }
    targets.set(request, target);
    void proxy(request, response, next);
  };
}
