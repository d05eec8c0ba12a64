import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { assertPortsFree } from '../net.ts';
import { probeKafka, waitUntilReady } from '../probes.ts';
import { SERVICES } from '../services.ts';
import { installPackages } from './packages.ts';
import { displayPath, serviceDir } from './paths.ts';
import { isAlive, livePidFromFile, stopProcess } from './processes.ts';
import { findExecutable, runChecked, spawnDetached } from './system.ts';
import { ServiceError } from '../errors.ts';

/**
 * Apache Kafka without Docker: the broker's jars from Maven Central (resolved once with Maven),
 * run by the JVM as a single KRaft node that is both broker and controller.
 */

export const KAFKA_VERSION = '3.9.1';
const POM = join(dirname(fileURLToPath(import.meta.url)), 'kafka', 'pom.xml');
const MARKER_JARS = [`kafka_2.13-${KAFKA_VERSION}.jar`, `kafka-tools-${KAFKA_VERSION}.jar`];

export interface KafkaNode {
  /** The node's directory: libs/, data/, logs/, server.properties. */
  dir: string;
  port: number;
  controllerPort: number;
}

/** Debian packages for the programs Kafka needs that are missing (Maven only until the jars are there). */
export function kafkaPackages(libsDir = defaultLibsDir()): string[] {
  const packages: string[] = [];
  if (!findExecutable('java')) packages.push('default-jre-headless');
  if (!jarsPresent(libsDir) && !findExecutable('mvn')) packages.push('maven');
  return packages;
}

function defaultLibsDir(): string {
  return join(serviceDir('kafka'), 'libs');
}

function jarsPresent(libsDir: string): boolean {
  return existsSync(libsDir) && MARKER_JARS.every((jar) => existsSync(join(libsDir, jar)));
}

/**
 * The directory holding the Kafka jars (broker, tools, logging), downloaded on first use:
 * run `java -cp '<dir>/*' org.apache.kafka.tools.ProducerPerformance …` with it, for example.
 * Maven caches the downloads in ~/.m2, so even a deleted `.course/` is rebuilt offline.
 */
export async function ensureKafkaJars(progress: (message: string) => void = () => {}): Promise<string> {
  const libsDir = defaultLibsDir();
  if (jarsPresent(libsDir)) return libsDir;

  await installPackages(kafkaPackages(libsDir), progress);
  progress(`fetching the Apache Kafka ${KAFKA_VERSION} jars from Maven Central (about 50 MB, once)…`);
  // Resolve into a scratch directory first: an interrupted download must not look complete.
  const partial = `${libsDir}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(dirname(libsDir), { recursive: true });
  await runChecked(
    'mvn',
    [
      '-q',
      '-B',
      '-Dstyle.color=never',
      '-f',
      POM,
      'dependency:copy-dependencies',
      `-DoutputDirectory=${partial}`,
      '-DincludeScope=runtime',
    ],
    { timeoutMs: 15 * 60_000 },
  ).catch((error: Error) => {
    throw new ServiceError(`could not fetch the Kafka jars with Maven (is Maven Central reachable?)\n${error.message}`);
  });
  if (!jarsPresent(partial)) throw new ServiceError(`Maven finished but ${MARKER_JARS.join(', ')} are missing from ${partial}`);
  rmSync(libsDir, { recursive: true, force: true });
  renameSync(partial, libsDir);
  return libsDir;
}

export function kafkaLogFile(node: KafkaNode): string {
  return join(node.dir, 'logs', 'server.log');
}

function pidFile(node: KafkaNode): string {
  return join(node.dir, 'kafka.pid');
}

export function kafkaPid(node: KafkaNode): number | undefined {
  return livePidFromFile(pidFile(node), 'kafka.Kafka');
}

function serverProperties(node: KafkaNode): string {
  return [
    '# A single-node KRaft cluster for the course: this process is both broker and controller.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${node.controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${node.port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${join(node.dir, 'data')}`,
    'num.partitions=1',
    'auto.create.topics.enable=true',
    '# One broker: internal topics cannot be replicated.',
    'offsets.topic.replication.factor=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    '# Consumer groups start at once instead of waiting 3 s for more members.',
    'group.initial.rebalance.delay.ms=0',
    '',
  ].join('\n');
}

function log4jProperties(node: KafkaNode): string {
  return [
    'log4j.rootLogger=INFO, file',
    'log4j.appender.file=org.apache.log4j.RollingFileAppender',
    `log4j.appender.file.File=${kafkaLogFile(node)}`,
    'log4j.appender.file.MaxFileSize=20MB',
    'log4j.appender.file.MaxBackupIndex=2',
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.logger.kafka.request.logger=WARN',
    'log4j.logger.state.change.logger=WARN',
    '',
  ].join('\n');
}

/** A KRaft cluster id: 16 random bytes, base64url without padding (Kafka avoids a leading '-'). */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Formats the log directory (once) and starts the broker; resolves when clients can use it. */
export async function startKafkaNode(node: KafkaNode, libsDir: string, timeoutMs = 120_000): Promise<void> {
  const java = findExecutable('java');
  if (!java) throw new ServiceError('Java is not installed (apt-get install default-jre-headless)');
  await assertPortsFree([node.port, node.controllerPort], 'Kafka');
  const dataDir = join(node.dir, 'data');
  const logsDir = join(node.dir, 'logs');
  mkdirSync(dataDir, { recursive: true });
  mkdirSync(logsDir, { recursive: true });
  const config = join(node.dir, 'server.properties');
  const log4j = join(node.dir, 'log4j.properties');
  writeFileSync(config, serverProperties(node));
  writeFileSync(log4j, log4jProperties(node));
  const classpath = join(libsDir, '*');
  const logging = [`-Dlog4j.configuration=${pathToFileURL(log4j).href}`, `-Dkafka.logs.dir=${logsDir}`];

  if (!existsSync(join(dataDir, 'meta.properties'))) {
    if (readdirSync(dataDir).length > 0) rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true });
    await runChecked(java, [...logging, '-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', newClusterId(), '-c', config], {
      timeoutMs: 120_000,
    });
  }

  const pid = spawnDetached(
    java,
    [
      '-Xms256m',
      '-Xmx512m',
      '-XX:+UseG1GC',
      '-XX:MaxGCPauseMillis=20',
      '-XX:+ExitOnOutOfMemoryError',
      '-Djava.awt.headless=true',
      ...logging,
      '-cp',
      classpath,
      'kafka.Kafka',
      config,
    ],
    { cwd: node.dir, logFile: join(logsDir, 'kafka.out') },
  );
  writeFileSync(pidFile(node), `${pid}\n`);
  await waitUntilReady(() => probeKafka(SERVICES.kafka.urlFor('127.0.0.1', node.port)), {
    what: `Kafka on 127.0.0.1:${node.port}`,
    timeoutMs,
    logFile: `${displayPath(kafkaLogFile(node))} (JVM output: ${displayPath(join(logsDir, 'kafka.out'))})`,
    alive: () => isAlive(pid),
  });
}

/** Stops the broker with a controlled shutdown (SIGTERM), killing it if that takes too long. */
export async function stopKafkaNode(node: KafkaNode): Promise<boolean> {
  const pid = kafkaPid(node);
  if (pid === undefined) return false;
  await stopProcess(pid, 'SIGTERM', 30_000);
  return true;
}
