import type { StartedTestContainer } from 'testcontainers';
import { GRACEFUL_STOP_MS } from './stop.ts';
import { advertisedKafkaBrokers, probeKafka, waitUntilReady } from '../probes.ts';
import type { CourseContainer } from './containers.ts';
import { ServiceError } from '../errors.ts';

/**
 * Apache Kafka (the official apache/kafka image) in KRaft mode. Clients must be told the broker's
 * address as seen from the host, which includes a port Docker picks only when the container
 * starts. So the container first waits for a start script, and we write that script, with the
 * mapped port in KAFKA_ADVERTISED_LISTENERS, once the port is known.
 */

const CLIENT_PORT = 9092;
// In a directory the container's own user (appuser) creates: in /tmp, whose sticky bit lets only a
// file's owner delete it, appuser could not remove the marker that the course (as root) copied in.
const SCRIPT_DIR = '/tmp/course-kafka';
const START_SCRIPT = `${SCRIPT_DIR}/start.sh`;
const SCRIPT_READY = `${SCRIPT_DIR}/ready`;
const WAITING_MESSAGE = 'waiting for the course start script';

/** The KRaft single-node settings every course Kafka container runs with. */
export const KAFKA_CONTAINER_ENVIRONMENT: Record<string, string> = {
  CLUSTER_ID: 'egXnB4yNkpFDoAJ8NoIycQ',
  KAFKA_NODE_ID: '1',
  KAFKA_PROCESS_ROLES: 'broker,controller',
  // PLAINTEXT for clients on the host, BROKER between brokers, CONTROLLER for KRaft.
  KAFKA_LISTENERS: `PLAINTEXT://0.0.0.0:${CLIENT_PORT},BROKER://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094`,
  KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT',
  KAFKA_INTER_BROKER_LISTENER_NAME: 'BROKER',
  KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
  KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9094',
  KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
  KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
  KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
  KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
  KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'true',
  KAFKA_NUM_PARTITIONS: '1',
  KAFKA_HEAP_OPTS: '-Xms256m -Xmx512m',
};

function startScript(host: string, port: number, containerHostname: string): string {
  if (!/^[\w.:-]+$/.test(host) || !/^[\w.-]+$/.test(containerHostname)) {
    throw new Error(`unexpected Docker host name "${host}" / "${containerHostname}"`);
  }
  return [
    '#!/bin/sh',
    `export KAFKA_ADVERTISED_LISTENERS='PLAINTEXT://${host}:${port},BROKER://${containerHostname}:9093'`,
    'exec /etc/kafka/docker/run',
    '',
  ].join('\n');
}

async function hasStartScript(container: StartedTestContainer): Promise<boolean> {
  return (await container.exec(['test', '-f', SCRIPT_READY])).exitCode === 0;
}

export async function startKafkaContainer(labels: Record<string, string>, image: string): Promise<CourseContainer> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer(image)
    .withExposedPorts(CLIENT_PORT)
    .withEnvironment(KAFKA_CONTAINER_ENVIRONMENT)
    .withCommand([
      'sh',
      '-c',
      // Every start (the first, a reuse after `docker restart`, an engine restart) waits for a
      // script written with the host port of that start: Docker may map a new one each time.
      `mkdir -p ${SCRIPT_DIR} && rm -f ${SCRIPT_READY} && echo '${WAITING_MESSAGE}' && while [ ! -f ${SCRIPT_READY} ]; do sleep 0.1; done; exec sh ${START_SCRIPT}`,
    ])
    .withWaitStrategy(Wait.forLogMessage(WAITING_MESSAGE))
    .withStartupTimeout(120_000)
    .withLabels(labels)
    .withReuse()
    .start();

  const id = container.getId().slice(0, 12);
  const urlOf = () => `${container.getHost()}:${container.getMappedPort(CLIENT_PORT)}`;
  if ((await hasStartScript(container)) && !(await advertisedKafkaBrokers(urlOf()).catch(() => [] as string[])).includes(urlOf())) {
    // A running Kafka that advertises another address than its port now (a restart the course did
    // not see): restart it, so that it waits for a script with the current port. Seconds, not minutes.
    await container.restart({ timeout: GRACEFUL_STOP_MS });
  }
  if (!(await hasStartScript(container))) {
    // One archive, extracted in order: the ready marker appears only once the script is complete.
    await container.copyContentToContainer([
      { content: startScript(container.getHost(), container.getMappedPort(CLIENT_PORT), container.getHostname()), target: START_SCRIPT, mode: 0o755 },
      { content: '', target: SCRIPT_READY, mode: 0o644 },
    ]);
  }
  const url = urlOf();
  await waitUntilReady(() => probeKafka(url), {
    what: `Kafka in container ${id}`,
    timeoutMs: 120_000,
    logFile: `docker logs ${id}`,
  });
  const advertised = await advertisedKafkaBrokers(url);
  if (!advertised.includes(url)) throw new ServiceError(`Kafka in container ${id} advertises ${advertised.join(', ')}, not ${url}`);
  return { url, container };
}
