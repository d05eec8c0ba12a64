import { vi } from 'vitest';
import {
  AssignerProtocol,
  Kafka,
  logLevel,
  Partitioners,
  type Admin,
  type Consumer,
  type GroupDescription,
  type KafkaMessage,
  type LogEntry,
  type Message,
  type Producer,
} from 'kafkajs';
import { uniqueName } from './names.ts';
import { serviceUrl } from './services.ts';

// The checks choose the partitioner explicitly; silence the notice for learner code that does not.
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';

/**
 * Consumer-group timings for checks: short enough that joins, rebalances and a crashed member's
 * eviction take a second or two instead of the production minute, long enough to stay stable on a
 * busy machine. A live member notices a rebalance at its next heartbeat (every 300 ms, or when an
 * empty fetch returns after 200 ms) and must rejoin within the rebalance timeout.
 */
export const CHECK_GROUP_TIMINGS = {
  sessionTimeout: 6_000,
  heartbeatInterval: 300,
  rebalanceTimeout: 2_500,
  maxWaitTimeInMs: 200,
} as const;

export type CheckGroupTimings = { -readonly [K in keyof typeof CHECK_GROUP_TIMINGS]: number };

/** The same timings as environment variables, for a lesson entrypoint run as its own process. */
export function groupTimingsEnv(overrides: Partial<CheckGroupTimings> = {}): Record<string, string> {
  const timings = { ...CHECK_GROUP_TIMINGS, ...overrides };
  return {
    KAFKA_SESSION_TIMEOUT_MS: String(timings.sessionTimeout),
    KAFKA_HEARTBEAT_INTERVAL_MS: String(timings.heartbeatInterval),
    KAFKA_REBALANCE_TIMEOUT_MS: String(timings.rebalanceTimeout),
    KAFKA_MAX_WAIT_MS: String(timings.maxWaitTimeInMs),
    KAFKA_LOG_LEVEL: 'error',
    KAFKAJS_NO_PARTITIONER_WARNING: '1',
  };
}

export function kafkaBrokers(): string[] {
  return serviceUrl('kafka')
    .split(',')
    .map((broker) => broker.trim())
    .filter(Boolean);
}

/**
 * Records what a learner's eachMessage/eachBatch threw: kafkajs catches it, logs it and retries,
 * so the check would otherwise only see that nothing was processed.
 */
function recordHandlerErrors(clientId: string, errors: string[]) {
  return () => ({ log }: LogEntry) => {
    if (typeof log.message !== 'string' || !log.message.startsWith('Error when calling each')) return;
    const error = (log as { error?: unknown }).error;
    const text = error instanceof Error ? error.message : String(error);
    const entry = `${clientId}: ${text}`;
    if (!errors.includes(entry)) errors.push(entry);
  };
}

/** A client for the check itself or to hand to learner code; quiet, with a short retry budget. */
export function checkKafka(clientId = 'course-check', errors: string[] = [], brokers = kafkaBrokers()): Kafka {
  return new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.ERROR,
    logCreator: recordHandlerErrors(clientId, errors),
    connectionTimeout: 3_000,
    // Enough for a broker that is slow to report a new topic's leader (a busy machine, a container).
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
}

export interface GroupMember {
  clientId: string;
  memberId: string;
  partitions: number[];
}

export type ReadMessage = KafkaMessage & { partition: number };

/**
 * Kafka plumbing for one test: admin clients, unique topics and groups, and teardown of
 * everything the test opens (clients, learner consumers, topics, groups), whether it passes or
 * fails. Errors that learner handlers throw inside clients made here are kept for this test only.
 */
export class KafkaTestKit {
  private readonly topicAdmins = new Map<string, Promise<Admin>>();
  private readonly topics: string[] = [];
  private readonly groups: string[] = [];
  private readonly cleanups: Array<() => Promise<unknown>> = [];
  private readonly handlerErrors: string[] = [];
  private mainAdmin: Promise<Admin> | undefined;

  constructor(private readonly brokers: () => string[] = kafkaBrokers) {}

  /** The test's own admin client, for anything not tied to one topic. */
  admin(): Promise<Admin> {
    this.mainAdmin ??= this.connectAdmin();
    return this.mainAdmin;
  }

  /**
   * An admin client for one topic's work. kafkajs keeps one metadata view per client and a refresh
   * for one topic can drop another from it, so topic lookups (offsets, partitions, deleting
   * records) each get a client of their own.
   */
  adminFor(topic: string): Promise<Admin> {
    let connected = this.topicAdmins.get(topic);
    if (!connected) {
      connected = this.connectAdmin();
      this.topicAdmins.set(topic, connected);
    }
    return connected;
  }

  /** A client with its own id (member descriptions show it, so the check can tell members apart). */
  client(clientId = 'course-check'): Kafka {
    return checkKafka(clientId, this.handlerErrors, this.brokers());
  }

  /**
   * `message`, followed by the errors learner handlers threw in this test, if any: the reason a
   * consumer processed nothing is usually there (a TODO, a typo, a wrong assumption).
   */
  withHandlerErrors(message: string): string {
    if (this.handlerErrors.length === 0) return message;
    return `${message}\nMeanwhile your message handler threw (kafkajs caught it and retried):\n` +
      this.handlerErrors.slice(-3).map((entry) => `  ${entry}`).join('\n');
  }

  /**
   * Creates a topic unique to this test with an explicit partition count, deleted afterwards, and
   * waits until every partition has a leader. `config`: topic settings, e.g. max.message.bytes.
   */
  async createTopic(prefix: string, partitions: number, config: Record<string, string> = {}): Promise<string> {
    const topic = this.topicName(prefix);
    const admin = await this.adminFor(topic);
    // On a busy broker, waiting for the new partitions' leaders can fail with "This server does not
    // host this topic-partition" for a moment: the topic exists, its metadata is not everywhere yet.
    const configEntries = Object.entries(config).map(([name, value]) => ({ name, value }));
    for (let attempt = 1; ; attempt += 1) {
      try {
        await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1, configEntries }], waitForLeaders: true });
        break;
      } catch (error) {
        if (attempt >= 10 || !/does not host this topic-partition|already exists/i.test(String(error))) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    await vi.waitFor(async () => {
      const [metadata] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
      if ((metadata?.partitions ?? []).filter((p) => p.leader >= 0).length < partitions) throw new Error(`${topic} has no leader for every partition yet`);
    }, { timeout: 10_000, interval: 100 });
    return topic;
  }

  /** A topic name unique to this test (for code that creates the topic itself); deleted afterwards. */
  topicName(prefix: string): string {
    const topic = uniqueName(prefix);
    this.topics.push(topic);
    return topic;
  }

  /** A consumer group id unique to this test; deleted afterwards. */
  groupId(prefix: string): string {
    const id = uniqueName(prefix);
    this.groups.push(id);
    return id;
  }

  /** The check's own producer (explicit default partitioner, no topic auto-creation). */
  async producer(): Promise<Producer> {
    const producer = this.client('course-check-producer').producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
    });
    await producer.connect();
    this.cleanup(() => producer.disconnect());
    return producer;
  }

  /** Runs `stop` after the test, before topics and groups are deleted, even when the test fails. */
  cleanup(stop: () => Promise<unknown>): void {
    this.cleanups.push(stop);
  }

  /** Committed offset per partition (-1 when nothing is committed). */
  async committedOffsets(groupId: string, topic: string): Promise<Map<number, number>> {
    const [entry] = await (await this.adminFor(topic)).fetchOffsets({ groupId, topics: [topic] });
    return new Map((entry?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
  }

  /** High watermark (the offset after the last committed-to-all-replicas message) per partition. */
  async latestOffsets(topic: string): Promise<Map<number, number>> {
    const offsets = await (await this.adminFor(topic)).fetchTopicOffsets(topic);
    return new Map(offsets.map((p) => [p.partition, Number(p.high)]));
  }

  async describeGroup(groupId: string): Promise<GroupDescription> {
    const { groups: [group] } = await (await this.admin()).describeGroups([groupId]);
    if (!group) throw new Error(`the broker did not describe group ${groupId}`);
    return group;
  }

  /** The group's members and the partitions of `topic` each one owns (empty unless it is Stable). */
  async groupMembers(groupId: string, topic: string): Promise<{ state: string; members: GroupMember[] }> {
    const group = await this.describeGroup(groupId);
    const members = group.members.map((member) => {
      const decoded = member.memberAssignment.length > 0
        ? AssignerProtocol.MemberAssignment.decode(member.memberAssignment)
        : null;
      const partitions = [...(decoded?.assignment[topic] ?? [])].sort((a, b) => a - b);
      return { clientId: member.clientId, memberId: member.memberId, partitions };
    });
    return { state: group.state, members };
  }

  /** Reads the first `count` messages of a topic with a consumer of the check's own. */
  async readMessages(topic: string, count: number, timeoutMs = 8_000): Promise<ReadMessage[]> {
    const consumer: Consumer = this.client('course-check-reader').consumer({
      groupId: this.groupId('check-reader'),
      ...CHECK_GROUP_TIMINGS,
    });
    const read: ReadMessage[] = [];
    try {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({ eachMessage: async ({ partition, message }) => void read.push({ ...message, partition }) });
      await vi.waitFor(
        () => {
          if (read.length < count) throw new Error(`read ${read.length} of ${count} messages from ${topic}`);
        },
        { timeout: timeoutMs, interval: 50 },
      );
      return read;
    } finally {
      await consumer.disconnect();
    }
  }

  /** Stops what the test started (newest first), then deletes its groups and topics. */
  async teardown(): Promise<void> {
    const stops = this.cleanups.splice(0).reverse();
    for (const result of await Promise.allSettled(stops.map((stop) => stop()))) {
      if (result.status === 'rejected') console.warn('[kafka check] cleanup failed:', result.reason);
    }
    const admins = [...this.topicAdmins.values()];
    this.topicAdmins.clear();
    const main = this.mainAdmin;
    this.mainAdmin = undefined;
    try {
      if (this.groups.length > 0 || this.topics.length > 0) {
        const admin = await (main ?? this.connectAdmin());
        if (!main) admins.push(Promise.resolve(admin));
        if (this.groups.length > 0) await admin.deleteGroups(this.groups.splice(0)).catch(() => undefined);
        if (this.topics.length > 0) await admin.deleteTopics({ topics: this.topics.splice(0), timeout: 5_000 }).catch(() => undefined);
      }
    } catch {
      // The broker is gone (a private instance already stopped): nothing left to delete.
    } finally {
      if (main) admins.push(main);
      const settled = await Promise.allSettled(admins);
      await Promise.allSettled(settled.map((r) => (r.status === 'fulfilled' ? r.value.disconnect() : Promise.resolve())));
    }
  }

  private async connectAdmin(): Promise<Admin> {
    const admin = this.client('course-check-admin').admin();
    await admin.connect();
    return admin;
  }
}

/** Sends messages to a topic and waits for every replica to have them. */
export async function produce(producer: Producer, topic: string, messages: Message[]): Promise<void> {
  await producer.send({ topic, messages, acks: -1 });
}

/** A header value as text, whatever form kafkajs delivered it in (Buffer, string or a list). */
export function headerText(headers: KafkaMessage['headers'], name: string): string | undefined {
  const raw = headers?.[name];
  const first = Array.isArray(raw) ? raw[0] : raw;
  return first === undefined ? undefined : first.toString();
}

