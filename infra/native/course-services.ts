import { SERVICES, type ServiceName } from '../services.ts';
import { ETCD_PACKAGE, etcdLogFile, etcdPid, etcdServerPath, maskPackageService, startEtcdNode, stopEtcdNode, type EtcdNode } from './etcd.ts';
import { ensureKafkaJars, KAFKA_VERSION, kafkaLogFile, kafkaPackages, kafkaPid, startKafkaNode, stopKafkaNode, type KafkaNode } from './kafka.ts';
import { prepareServiceDir, serviceDir } from './paths.ts';
import {
  POSTGRES_PACKAGE,
  postgresBinDir,
  postgresLogFile,
  postgresPid,
  postgresUser,
  startPostgresNode,
  stopPostgresNode,
  type PostgresNode,
} from './postgres.ts';
import {
  RABBITMQ_PACKAGE,
  rabbitLogFile,
  rabbitmqServerPath,
  rabbitmqUser,
  rabbitNodePid,
  startRabbitNode,
  stopRabbitNode,
  type RabbitNode,
} from './rabbitmq.ts';
import { REDIS_PACKAGE, redisLogFile, redisPid, redisServerPath, redisUser, startRedisNode, stopRedisNode, type RedisNode } from './redis.ts';

/**
 * The course's own native instance of each service, on the service's usual port, with its data
 * and logs in `.course/services/<service>/`.
 */
export interface CourseService {
  /** Debian packages to install before it can start (empty when its programs are there). */
  missingPackages(): string[];
  /** Runs after apt-get installed its packages: keeps a service the package started off the port. */
  afterInstall?(): Promise<void>;
  /** Starts it (its port must be free) and resolves once it answers its protocol. */
  start(progress: (message: string) => void): Promise<void>;
  /** The pid of the instance the course started, while it runs. */
  pid(): number | undefined;
  /** Stops the instance the course started; false if it was not running. */
  stop(): Promise<boolean>;
  logFile(): string;
  /** What to expect while it starts, for the progress line. */
  startingMessage: string;
}

const port = (service: ServiceName) => SERVICES[service].port;

function redisNode(dir = serviceDir('redis')): RedisNode {
  return { dir, port: port('redis'), user: redisUser() };
}

function rabbitNode(dir = serviceDir('rabbitmq')): RabbitNode {
  // The distribution port follows RabbitMQ's own convention: AMQP port + 20000.
  return { name: 'course', dir, port: port('rabbitmq'), distPort: port('rabbitmq') + 20_000, user: rabbitmqUser() };
}

function kafkaNode(dir = serviceDir('kafka')): KafkaNode {
  return { dir, port: port('kafka'), controllerPort: port('kafka') + 1 };
}

function postgresNode(dir = serviceDir('postgres')): PostgresNode {
  return { dir, port: port('postgres'), user: postgresUser() };
}

function etcdNode(dir = serviceDir('etcd')): EtcdNode {
  // The peer port follows etcd's own convention: client port + 1 (2379, 2380).
  return { dir, port: port('etcd'), peerPort: port('etcd') + 1 };
}

export const COURSE_SERVICES: Record<ServiceName, CourseService> = {
  redis: {
    missingPackages: () => (redisServerPath() ? [] : [REDIS_PACKAGE]),
    async start() {
      const node = redisNode(await prepareServiceDir('redis', redisUser()));
      await startRedisNode(node);
    },
    pid: () => redisPid(redisNode()),
    stop: () => stopRedisNode(redisNode()),
    logFile: () => redisLogFile(redisNode()),
    startingMessage: `starting Redis on 127.0.0.1:${port('redis')}…`,
  },
  rabbitmq: {
    missingPackages: () => (rabbitmqServerPath() ? [] : [RABBITMQ_PACKAGE]),
    async start() {
      await startRabbitNode(rabbitNode(await prepareServiceDir('rabbitmq', rabbitmqUser())));
    },
    pid: () => rabbitNodePid(rabbitNode()),
    stop: () => stopRabbitNode(rabbitNode()),
    logFile: () => rabbitLogFile(rabbitNode()),
    startingMessage: `starting RabbitMQ on 127.0.0.1:${port('rabbitmq')} (the first start takes ~10 s)…`,
  },
  kafka: {
    missingPackages: () => kafkaPackages(),
    async start(progress) {
      const libs = await ensureKafkaJars(progress);
      await startKafkaNode(kafkaNode(await prepareServiceDir('kafka')), libs);
    },
    pid: () => kafkaPid(kafkaNode()),
    stop: () => stopKafkaNode(kafkaNode()),
    logFile: () => kafkaLogFile(kafkaNode()),
    startingMessage: `starting Apache Kafka ${KAFKA_VERSION} (KRaft) on 127.0.0.1:${port('kafka')} (about 10 s)…`,
  },
  postgres: {
    missingPackages: () => (postgresBinDir() ? [] : [POSTGRES_PACKAGE]),
    async start() {
      await startPostgresNode(postgresNode(await prepareServiceDir('postgres', postgresUser())));
    },
    pid: () => postgresPid(postgresNode()),
    stop: () => stopPostgresNode(postgresNode()),
    logFile: () => postgresLogFile(postgresNode()),
    startingMessage: `starting PostgreSQL on 127.0.0.1:${port('postgres')}…`,
  },
  etcd: {
    missingPackages: () => (etcdServerPath() ? [] : [ETCD_PACKAGE]),
    afterInstall: maskPackageService,
    async start() {
      await startEtcdNode(etcdNode(await prepareServiceDir('etcd')));
    },
    pid: () => etcdPid(etcdNode()),
    stop: () => stopEtcdNode(etcdNode()),
    logFile: () => etcdLogFile(etcdNode()),
    startingMessage: `starting etcd on 127.0.0.1:${port('etcd')}…`,
  },
};

