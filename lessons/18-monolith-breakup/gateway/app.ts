import type { Server } from 'node:http';
import { Etcd3 } from 'etcd3';
import express from 'express';
import { Redis } from 'ioredis';
import { etcdHosts } from '../platform/config.ts';
import { closeServer, errorHandler, listen, requestLogging } from '../platform/http.ts';
import { log } from '../platform/log.ts';
import { authenticate } from './auth.ts';
import type { GatewayConfig } from './config.ts';
import { createOverviewHandler } from './overview.ts';
import { createProxy, createRouter } from './proxy.ts';
import { installRateLimit } from './rate-limit.ts';
import { openRegistryView } from './registry-view.ts';
import { PUBLIC_ENDPOINTS, ROUTE_PREFIXES } from './routes.ts';

/**
 * The API gateway: the single entry point. In order, every request gets an id and a log line, is
 * counted against its client's rate limit, is authenticated, and then is either answered here
 * (the overview) or proxied to the monolith or a service instance found in the registry.
 */

export interface RunningGateway {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

export async function startGateway(config: GatewayConfig): Promise<RunningGateway> {
  const etcd = new Etcd3({ hosts: etcdHosts(config.registry.etcdUrl), dialTimeout: 5_000 });
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 2 });
  redis.on('error', (error) => log(config.name, undefined, `redis: ${error.message}`));
  try {
    const view = await openRegistryView(etcd, config.registry.root, (change) => log(config.name, undefined, `registry: ${change}`));
    const router = createRouter(view, config.monolithUrl);

    const app = express();
    app.disable('x-powered-by');
    app.use(requestLogging(config.name, 'gateway'));
    app.get('/health', (_request, response) => {
      response.json({ ok: true, service: 'gateway' });
    });
    installRateLimit(app, {
      redis,
      prefix: config.rateLimitPrefix,
      limit: config.rateLimit,
      windowMs: config.rateLimitWindowMs,
      trustedProxyHops: config.trustedProxyHops,
    });
    app.use(authenticate({ ...config.tokens, publicEndpoints: PUBLIC_ENDPOINTS }));
    app.get('/me/overview', createOverviewHandler({ router, timeoutMs: config.overviewTimeoutMs }));
    // No body parser anywhere before the proxy: request bodies stream through untouched.
    app.use(ROUTE_PREFIXES, createProxy(router, config.name));
    app.use((_request, response) => {
      response.status(404).json({ error: 'no such endpoint' });
    });
    app.use(errorHandler(config.name));

    const { server, port } = await listen(app, config.port, config.host);
    return {
      url: `http://${config.host}:${port}`,
      port,
      server,
      async close() {
        await closeServer(server);
        await view.close();
        etcd.close();
        await redis.quit().catch(() => redis.disconnect());
      },
    };
  } catch (error) {
    etcd.close();
    redis.disconnect();
    throw error;
  }
}
