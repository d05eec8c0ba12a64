import { integer, registrySettings, text, tokenSettings, url, type Env, type RegistrySettings, type TokenSettings } from '../platform/config.ts';

export interface GatewayConfig {
  /** GATEWAY_NAME: how its log lines start, e.g. "gateway-a" when two run. */
  name: string;
  port: number;
  host: string;
  registry: RegistrySettings;
  /** MONOLITH_URL: where every path goes that is not switched to its service yet. */
  monolithUrl: string;
  tokens: TokenSettings;
  /** REDIS_URL and RATE_LIMIT_PREFIX: the counters every gateway instance shares. */
  redisUrl: string;
  rateLimitPrefix: string;
  /** RATE_LIMIT_MAX requests per client per RATE_LIMIT_WINDOW_MS. */
  rateLimit: number;
  rateLimitWindowMs: number;
  /** TRUSTED_PROXY_HOPS: how many proxies (load balancers) sit in front of the gateway. */
  trustedProxyHops: number;
  /** OVERVIEW_TIMEOUT_MS: how long the overview waits for each service. */
  overviewTimeoutMs: number;
}

export function loadGatewayConfig(env: Env = process.env): GatewayConfig {
  return {
    name: text(env, 'GATEWAY_NAME', 'gateway'),
    port: integer(env, 'PORT', 8080, 0),
    host: text(env, 'HOST', '127.0.0.1'),
    registry: registrySettings(env),
    monolithUrl: url(env, 'MONOLITH_URL', 'http://127.0.0.1:4000', ['http:', 'https:']),
    tokens: tokenSettings(env),
    redisUrl: url(env, 'REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']),
    rateLimitPrefix: text(env, 'RATE_LIMIT_PREFIX', 'gateway:rate-limit:'),
    rateLimit: integer(env, 'RATE_LIMIT_MAX', 300, 1),
    rateLimitWindowMs: integer(env, 'RATE_LIMIT_WINDOW_MS', 60_000, 1),
    trustedProxyHops: integer(env, 'TRUSTED_PROXY_HOPS', 1, 0),
    overviewTimeoutMs: integer(env, 'OVERVIEW_TIMEOUT_MS', 1_000, 1),
  };
}
