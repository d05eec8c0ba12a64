import type { Express } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { Redis } from 'ioredis';
import { RedisStore, type RedisReply } from 'rate-limit-redis';

export interface RateLimitOptions {
  redis: Redis;
  /** The key prefix of the counters in Redis: the same for every instance of the gateway. */
  prefix: string;
  /** Requests per client per window. */
  limit: number;
  windowMs: number;
  /** How many proxies (load balancers) sit in front of the gateway and add X-Forwarded-For. */
  trustedProxyHops: number;
}

/**
 * A rate limit per client that holds however many gateway instances run: the counters live in
 * Redis, not in each process's memory. The client is req.ip, and Express computes it from
 * X-Forwarded-For only as far as `trust proxy` allows: with the number of proxies in front
 * (not `true`, which believes whatever a client writes there), every client is told apart and
 * none can pick its own address.
 */
export function installRateLimit(app: Express, options: RateLimitOptions): void {
  app.set('trust proxy', options.trustedProxyHops);
  app.use(
    rateLimit({
      windowMs: options.windowMs,
      limit: options.limit,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      store: new RedisStore({
        prefix: options.prefix,
        sendCommand: (command: string, ...args: string[]) => options.redis.call(command, ...args) as Promise<RedisReply>,
      }),
      handler: (_request, response, _next, used) => {
        response.status(used.statusCode).json({ error: 'too many requests, slow down' });
      },
    }),
  );
}
