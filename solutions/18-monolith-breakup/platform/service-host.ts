import type { Express } from 'express';
import { Etcd3 } from 'etcd3';
import type pg from 'pg';
import { connectBroker, subscribe, type Broker } from './broker.ts';
import { etcdHosts, loadServiceConfig, type ServiceConfig } from './config.ts';
import { createPool, migrate } from './db.ts';
import type { AnyEnvelope, EventType } from './events.ts';
import { closeServer, listen } from './http.ts';
import { log } from './log.ts';
import { startOutboxRelay } from './outbox.ts';
import { registerInstance } from './registry.ts';
import { closeOnShutdown, startOrExit } from './runtime.ts';

/**
 * What every service process of the new system does, in one place: read its configuration,
 * migrate its own schema, connect to the broker, relay its outbox, consume its queue, listen on
 * its port, and register in the registry. On SIGTERM it undoes it all in reverse order, leaving
 * the registry first so that no new request is routed to an instance that is going away.
 */

export interface ServiceContext {
  config: ServiceConfig;
  pool: pg.Pool;
}

export interface ServiceDefinition {
  service: string;
  /** The directory of its .sql migrations. */
  migrations: string;
  /** Whether it publishes events (from the `outbox` table its migrations create). Default: true. */
  publishes?: boolean;
  createApp(context: ServiceContext): Express;
  /** The events it reacts to, consumed from its own queue "<QUEUE_PREFIX>.<service>". */
  consumes?: { events: readonly EventType[]; handle(event: AnyEnvelope, context: ServiceContext): Promise<void> };
  /** Extra resources (the notifications service's job queue), started before it listens and closed after. */
  resources?: (context: ServiceContext) => Promise<{ close(): Promise<void> }>;
}

export async function runService(definition: ServiceDefinition): Promise<void> {
  const name = definition.service;
  const config = await startOrExit(name, async () => loadServiceConfig(name));
  const pool = createPool(config.databaseUrl, name);
  const context: ServiceContext = { config, pool };
  await startOrExit(name, () => migrate(pool, definition.migrations));
  const broker: Broker = await startOrExit(name, () => connectBroker(name, config.amqpUrl, config.exchange));
  const relay = definition.publishes === false ? undefined : startOutboxRelay(name, pool, broker.publishing, config.exchange, config.outboxPollMs);
  const resources = await startOrExit(name, async () => (definition.resources ? definition.resources(context) : { close: async () => {} }));
  const consumes = definition.consumes;
  if (consumes) {
    await startOrExit(name, () =>
      subscribe(name, broker.consuming, {
        queue: `${config.queuePrefix}.${name}`,
        exchange: config.exchange,
        events: consumes.events,
        handle: (event) => consumes.handle(event, context),
      }),
    );
  }
  const app = await startOrExit(name, async () => definition.createApp(context));
  const { server, port } = await startOrExit(name, () => listen(app, config.port, config.host));
  const url = `http://${config.host}:${port}`;

  const etcd = new Etcd3({ hosts: etcdHosts(config.registry.etcdUrl), dialTimeout: 5_000 });
  const registration = await startOrExit(name, () =>
    registerInstance(etcd, {
      root: config.registry.root,
      instance: { service: name, instanceId: config.instanceId, url },
      ttlSeconds: config.leaseTtlSeconds,
      onLost: (reason) => log(name, undefined, `registry lease lost (${reason}); registering again`),
    }),
  );
  log(name, undefined, `ready: ${url} (instance ${config.instanceId}, registered as ${registration.key})`);

  closeOnShutdown(name, async () => {
    await registration.deregister();
    await closeServer(server);
    await broker.consuming.close().catch(() => {});
    await relay?.stop();
    await resources.close();
    await broker.close();
    await pool.end();
    etcd.close();
  });
}
