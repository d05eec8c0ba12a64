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
  throw new Error('TODO: createRouter');
}

/**
 * Proxies a request to its target with http-proxy-middleware, untouched: the full original path
 * (Express strips the mount path from req.url, so it is put back from req.originalUrl), the body
 * as it streams in, the request id, and the user the gateway authenticated (never a client's
 * own X-User-Id). A target that does not answer gives 502, no target at all 503.
 */
export function createProxy(router: Router, gatewayName: string): RequestHandler {
  throw new Error('TODO: createProxy');
}
