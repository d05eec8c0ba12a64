import type { Etcd3 } from 'etcd3';
import { servicesPrefix, watchPrefix, type Instance, type PrefixWatch } from '../platform/registry.ts';
import { routesPrefix, type RouteSwitch } from './routes.ts';

/**
 * What the gateway knows of the registry, kept current by two watches: the instances of each
 * service (`<root>services/…`) and the strangler switches (`<root>routes/…`). Reading it costs
 * nothing: no request waits for etcd.
 */
export interface RegistryView {
  /** The instances registered for a service now, in a stable order (by instance id). */
  instances(service: string): readonly Instance[];
  /** Whether a route is switched to its service; every route starts at the monolith. */
  switchOf(routeName: string): RouteSwitch;
  close(): Promise<void>;
}

export async function openRegistryView(etcd: Etcd3, root: string, onChange: (what: string) => void = () => {}): Promise<RegistryView> {
  let instances = new Map<string, Instance[]>();
  let switches = new Map<string, RouteSwitch>();
  const watches: PrefixWatch[] = [];

  const servicePrefix = servicesPrefix(root);
  watches.push(
    await watchPrefix(etcd, servicePrefix, (entries) => {
      const next = new Map<string, Instance[]>();
      for (const value of entries.values()) {
        const instance = parseInstance(value);
        if (!instance) continue;
        const list = next.get(instance.service) ?? [];
        list.push(instance);
        next.set(instance.service, list);
      }
      for (const list of next.values()) list.sort((a, b) => a.instanceId.localeCompare(b.instanceId));
      instances = next;
      onChange(`instances: ${[...entries.keys()].map((key) => key.slice(servicePrefix.length)).join(', ') || 'none'}`);
    }),
  );
  const routePrefix = routesPrefix(root);
  watches.push(
    await watchPrefix(etcd, routePrefix, (entries) => {
      const next = new Map<string, RouteSwitch>();
      for (const [key, value] of entries) next.set(key.slice(routePrefix.length), value.trim() === 'service' ? 'service' : 'monolith');
      switches = next;
      onChange(`routes: ${[...next].map(([name, target]) => `${name}=${target}`).join(', ') || 'all to the monolith'}`);
    }),
  );

  return {
    instances: (service) => instances.get(service) ?? [],
    switchOf: (routeName) => switches.get(routeName) ?? 'monolith',
    async close() {
      await Promise.all(watches.map((watch) => watch.close()));
    },
  };
}

function parseInstance(value: string): Instance | undefined {
  try {
    const parsed = JSON.parse(value) as Partial<Instance>;
    if (typeof parsed.service === 'string' && typeof parsed.instanceId === 'string' && typeof parsed.url === 'string') {
      return { service: parsed.service, instanceId: parsed.instanceId, url: parsed.url };
    }
  } catch {
    // Not an instance: ignored.
  }
  return undefined;
}
