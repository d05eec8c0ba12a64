import { Redis } from 'ioredis';
import { connect } from 'amqplib';
import pg from 'pg';
import { describe, expect, test } from '../support/fixtures.ts';
import { etcdClient } from '../support/etcd.ts';
import { checkKafka } from '../support/kafka.ts';
import type { ServiceName } from '../../infra/services.ts';

/**
 * Smoke check of the outage machinery that lessons 05, 14, 17 and 18 stand on: a private instance
 * of each service answers, is really down while stopped (and after a crash), and comes back on the
 * same address with its data.
 */

const roundTrips: Record<ServiceName, { write(url: string): Promise<void>; read(url: string): Promise<boolean> }> = {
  redis: {
    async write(url) {
      const redis = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: false }).on('error', () => {});
      try {
        await redis.set('smoke:kept', 'yes');
        await redis.save();
      } finally {
        redis.disconnect();
      }
    },
    async read(url) {
      const redis = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: false }).on('error', () => {});
      try {
        return (await redis.get('smoke:kept')) === 'yes';
      } finally {
        redis.disconnect();
      }
    },
  },
  rabbitmq: {
    async write(url) {
      const connection = await connect(url);
      const channel = await connection.createConfirmChannel();
      await channel.assertQueue('smoke-kept', { durable: true, arguments: { 'x-queue-type': 'classic' } });
      channel.sendToQueue('smoke-kept', Buffer.from('yes'), { persistent: true });
      await channel.waitForConfirms();
      await connection.close();
    },
    async read(url) {
      const connection = await connect(url);
      try {
        const channel = await connection.createChannel();
        const message = await channel.get('smoke-kept', { noAck: true });
        return message !== false && message.content.toString() === 'yes';
      } finally {
        await connection.close();
      }
    },
  },
  kafka: {
    async write(url) {
      const admin = checkKafka('smoke-private', [], [url]).admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic: 'smoke-kept', numPartitions: 1 }], waitForLeaders: true });
      await admin.disconnect();
    },
    async read(url) {
      const admin = checkKafka('smoke-private', [], [url]).admin();
      await admin.connect();
      try {
        return (await admin.listTopics()).includes('smoke-kept');
      } finally {
        await admin.disconnect();
      }
    },
  },
  postgres: {
    async write(url) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query('CREATE TABLE IF NOT EXISTS smoke_kept (v text)');
      await client.query("INSERT INTO smoke_kept VALUES ('yes')");
      await client.end();
    },
    async read(url) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return (await client.query("SELECT 1 FROM smoke_kept WHERE v = 'yes'")).rowCount! > 0;
      } finally {
        await client.end();
      }
    },
  },
  etcd: {
    async write(url) {
      const client = etcdClient(url);
      try {
        await client.put('smoke/kept').value('yes');
      } finally {
        client.close();
      }
    },
    async read(url) {
      const client = etcdClient(url);
      try {
        return (await client.get('smoke/kept').string()) === 'yes';
      } finally {
        client.close();
      }
    },
  },
};

async function answers(read: () => Promise<boolean>): Promise<boolean> {
  return read().then(() => true, () => false);
}

describe.concurrent('private service instances (outages)', () => {
  for (const service of ['redis', 'rabbitmq', 'kafka', 'postgres', 'etcd'] as const) {
    test(`a private ${service} stops, crashes and comes back on the same address with its data`, async ({ own }) => {
      const instance = await own.start(service);
      const trip = roundTrips[service];
      await trip.write(instance.url);

      await instance.stop();
      expect(await answers(() => trip.read(instance.url)), `the private ${service} still answered after stop()`).toBe(false);
      await instance.start();
      expect(await trip.read(instance.url), `the private ${service} lost its data in a graceful stop`).toBe(true);

      await instance.stop({ kill: true });
      expect(await answers(() => trip.read(instance.url)), `the private ${service} still answered after a crash`).toBe(false);
      await instance.start();
      expect(await answers(() => trip.read(instance.url)), `the private ${service} did not come back after a crash`).toBe(true);
    }, 240_000);
  }
});
