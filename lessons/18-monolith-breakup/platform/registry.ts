import type { Etcd3, Lease } from 'etcd3';
import { describeError, sleep } from './runtime.ts';

/**
 * The service registry, in etcd. Each running instance of a service has one key,
 * `<root>services/<service>/<instanceId>`, whose value says where it listens. The key is attached
 * to a lease the instance keeps alive: stopped gracefully, the instance revokes the lease and the
 * key is gone at once; killed, it stops the keep-alives and etcd deletes the key when the lease
 * runs out. Whoever routes traffic watches the prefix and always knows who is there.
 */

export interface Instance {
  service: string;
  instanceId: string;
  /** Where it answers: "http://127.0.0.1:41234". */
  url: string;
}

export function servicesPrefix(root: string): string {
  return `${root}services/`;
}

export function instanceKey(root: string, instance: Pick<Instance, 'service' | 'instanceId'>): string {
  return `${servicesPrefix(root)}${instance.service}/${instance.instanceId}`;
}

export interface Registration {
  key: string;
  /** Takes the instance out of the registry at once (revokes its lease). */
  deregister(): Promise<void>;
}

export interface RegisterOptions {
  root: string;
  instance: Instance;
  /** The lease's time to live: how long the key outlives a killed instance. */
  ttlSeconds: number;
  /** Told when the lease was lost (etcd unreachable for longer than the TTL) and is being granted again. */
  onLost?: (reason: string) => void;
}

/**
 * Puts the instance's key under a lease of its own and keeps the lease alive (etcd3 sends a
 * keep-alive every third of the TTL). If the lease is lost, a new one is granted and the key put
 * again, so an instance that survived an etcd outage comes back into the registry by itself.
 */
export async function registerInstance(etcd: Etcd3, options: RegisterOptions): Promise<Registration> {
  throw new Error('TODO: registerInstance');
}

export interface PrefixWatch {
  close(): Promise<void>;
}

/**
 * Calls `onChange` with every key under the prefix and its value: once with what is there now,
 * then after every put and delete. The initial read and the watch are joined at a revision (the
 * watch starts right after the read's), so no change between the two is missed.
 */
export async function watchPrefix(
  etcd: Etcd3,
  prefix: string,
  onChange: (entries: ReadonlyMap<string, string>) => void,
): Promise<PrefixWatch> {
  throw new Error('TODO: watchPrefix');
}
