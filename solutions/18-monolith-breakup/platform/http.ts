import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import { log, logError } from './log.ts';

/** The header that carries a request's id from the gateway to every service, and back to the client. */
export const REQUEST_ID_HEADER = 'x-request-id';
/** Set by the gateway from the verified token; services trust it because only the gateway reaches them. */
export const USER_ID_HEADER = 'x-user-id';
/** Which process answered: "monolith", or a service instance's id. */
export const SERVED_BY_HEADER = 'x-served-by';

const WELL_FORMED_ID = /^[\w.:-]{8,128}$/;

/** The request id of a request: its X-Request-Id when well-formed, otherwise a new one. */
export function requestIdOf(request: Request): string {
  const incoming = request.get(REQUEST_ID_HEADER);
  return incoming && WELL_FORMED_ID.test(incoming) ? incoming : randomUUID();
}

/**
 * Gives each request its id (res.locals.requestId, echoed in X-Request-Id) and logs one line when
 * it is answered: method, path, status, duration, and who answered.
 */
export function requestLogging(service: string, servedBy = service): RequestHandler {
  return (request, response, next) => {
    const requestId = requestIdOf(request);
    const started = performance.now();
    response.locals.requestId = requestId;
    response.setHeader(REQUEST_ID_HEADER, requestId);
    response.setHeader(SERVED_BY_HEADER, servedBy);
    response.on('finish', () => {
      log(service, requestId, `${request.method} ${request.originalUrl} ${response.statusCode} ${Math.round(performance.now() - started)}ms`);
    });
    next();
  };
}

export function requestIdFrom(response: Response): string | undefined {
  const id: unknown = response.locals.requestId;
  return typeof id === 'string' ? id : undefined;
}

/** The user the gateway authenticated; a request that reached a service without one is refused. */
export function userIdFrom(request: Request, response: Response): string | undefined {
  const userId = request.get(USER_ID_HEADER);
  if (!userId) {
    response.status(401).json({ error: 'no authenticated user (requests reach the services through the gateway)' });
    return undefined;
  }
  return userId;
}

/** The last middleware: Express 5 passes the errors of async handlers here. */
export function errorHandler(service: string) {
  return (error: unknown, request: Request, response: Response, _next: NextFunction): void => {
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // Bad JSON and the like, from express.json().
      response.status(status).json({ error: (error as Error).message });
      return;
    }
    logError(service, requestIdFrom(response), `${request.method} ${request.originalUrl}`, error);
    if (!response.headersSent) response.status(500).json({ error: 'internal error' });
  };
}

/** Listens on host:port (port 0: a free one) and resolves with the server and the port it got. */
export function listen(app: Express, port: number, host: string): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, (error?: Error) => {
      if (error) reject(error);
      else resolve({ server, port: (server.address() as AddressInfo).port });
    });
  });
}

/** Stops accepting connections and waits for the requests in flight (idle keep-alive ones are closed). */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}
