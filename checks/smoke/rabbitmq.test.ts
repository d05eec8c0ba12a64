import { connect, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../support/names.ts';
import { serviceUrl } from '../support/services.ts';

/** Smoke check: the RabbitMQ the course uses confirms publishes and delivers to consumers. */
describe('RabbitMQ smoke check', () => {
  let connection: ChannelModel;
  const queue = uniqueName('smoke-jobs');

  beforeAll(async () => {
    connection = await connect(serviceUrl('rabbitmq'));
  });

  afterAll(async () => {
    if (!connection) return;
    const channel = await connection.createChannel().catch(() => undefined);
    await channel?.deleteQueue(queue).catch(() => {});
    await connection.close().catch(() => {});
  });

  it('publishes with a confirm, then consumes and acknowledges the message', async () => {
    expect(connection.connection.serverProperties.product, 'the AMQP server should be RabbitMQ').toBe('RabbitMQ');

    const channel = await connection.createConfirmChannel();
    await channel.assertQueue(queue, { durable: true });
    const body = JSON.stringify({ type: 'upload.received', fileId: 'f-1' });
    await new Promise<void>((resolve, reject) =>
      channel.sendToQueue(queue, Buffer.from(body), { persistent: true, messageId: 'm-1' }, (error) =>
        error ? reject(new Error(`the broker refused the message: ${String(error)}`)) : resolve(),
      ),
    );

    const received = new Promise<ConsumeMessage>((resolve) => {
      void channel.consume(queue, (message) => message && resolve(message), { noAck: false });
    });
    const message = await received;
    expect(message.content.toString(), 'the consumer should get the confirmed message unchanged').toBe(body);
    expect(message.properties.messageId).toBe('m-1');
    expect(message.properties.deliveryMode, 'a persistent message is delivered with delivery mode 2').toBe(2);
    channel.ack(message);

    const check = await channel.checkQueue(queue);
    expect(check.messageCount, 'the acknowledged message should have left the queue').toBe(0);
    await channel.close();
  });
});
