/**
 * The public API, path by path, and which service owns each path once it is moved out of the
 * monolith. Whether a path goes to the monolith or to its service is a switch in etcd,
 * `<root>routes/<name>` = "service" or "monolith" (the default): the strangler fig, one path at a
 * time, with no deploy and no restart.
 */

export interface Route {
  /** The switch's name: `<root>routes/<name>`. */
  name: string;
  /** The path it covers: the prefix itself and everything under it ("/orders", "/orders/…"). */
  prefix: string;
  /** The service that owns it in the new system. */
  service: string;
}

export const ROUTES: readonly Route[] = [
  { name: 'users', prefix: '/users', service: 'users' },
  { name: 'sessions', prefix: '/sessions', service: 'users' },
  { name: 'orders', prefix: '/orders', service: 'orders' },
  { name: 'payments', prefix: '/payments', service: 'payments' },
];

export const ROUTE_PREFIXES = ROUTES.map((route) => route.prefix);

/** Requests that need no token: signing up and signing in. */
export const PUBLIC_ENDPOINTS: readonly { method: string; path: string }[] = [
  { method: 'POST', path: '/users' },
  { method: 'POST', path: '/sessions' },
];

export type RouteSwitch = 'monolith' | 'service';

/** The route of a path, from its full path ("/orders/42?x=1"), or undefined. */
export function routeFor(path: string): Route | undefined {
  const pathname = path.split('?')[0]!;
  return ROUTES.find((route) => pathname === route.prefix || pathname.startsWith(`${route.prefix}/`));
}

export function routesPrefix(root: string): string {
  return `${root}routes/`;
}
