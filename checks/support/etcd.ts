import { Etcd3, type IKeyValue } from 'etcd3';
import { uniqueName } from './names.ts';
import { serviceUrl } from './services.ts';

/**
 * The etcd connections a test opens and the keys it writes. Every key under the test's prefix
 * (`prefix`, unique to the test, ending in "/") is deleted and every connection closed after the
 * test, pass or fail, after the processes that use them have stopped. Hand learner code the prefix
 * (a registry root such as `${etcd.prefix}services/`) and nothing the test made survives it.
 */
export class EtcdTestKit {
  readonly prefix: string;
  private readonly clients = new Set<Etcd3>();

  constructor(private readonly url: () => string = () => serviceUrl('etcd'), prefix = `${uniqueName('check')}/`) {
    this.prefix = prefix;
  }

  /** The hosts the etcd3 client takes: ETCD_URL may list several members, comma-separated. */
  get hosts(): string[] {
    return etcdHosts(this.url());
  }

  /** A key under the test's prefix: "<prefix><name>". */
  key(name: string): string {
    return `${this.prefix}${name}`;
  }

  /** A new client of the etcd the lesson declared, closed after the test. */
  connect(): Etcd3 {
    const client = etcdClient(this.url());
    this.clients.add(client);
    return client;
  }

  /** Every key under a prefix (the test's own by default) with its value, in key order. */
  async entries(prefix = this.prefix): Promise<Record<string, string>> {
    const client = this.connect();
    return client.getAll().prefix(prefix).strings();
  }

  /** The lease a key is attached to ('0' for none), and what etcd says is left of it (-1: expired). */
  async leaseOf(key: string): Promise<{ lease: string; ttl: number } | undefined> {
    const client = this.connect();
    const response = await client.kv.range({ key: Buffer.from(key) });
    const kv: IKeyValue | undefined = response.kvs[0];
    if (!kv) return undefined;
    if (kv.lease === '0') return { lease: '0', ttl: -1 };
    const info = await client.leaseClient.leaseTimeToLive({ ID: kv.lease });
    return { lease: kv.lease, ttl: Number(info.TTL) };
  }

  async teardown(): Promise<void> {
    const clients = [...this.clients];
    this.clients.clear();
    const admin = etcdClient(this.url());
    try {
      await admin.delete().prefix(this.prefix);
    } catch {
      // etcd is gone: nothing left to delete.
    } finally {
      admin.close();
    }
    for (const client of clients) client.close();
  }
}

export function etcdHosts(url: string): string[] {
  return url.split(',').map((host) => host.trim()).filter((host) => host.length > 0);
}

/** A client whose calls give up after 5 s instead of the library's default of waiting on. */
export function etcdClient(url: string): Etcd3 {
  return new Etcd3({
    hosts: etcdHosts(url),
    dialTimeout: 5_000,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + 5_000 }),
  });
}
