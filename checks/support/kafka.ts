import { afterAll, afterEach, beforeAll, vi } from 'vitest';
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

const handlerErrors: string[] = [];

/**
 * Records what a learner's eachMessage/eachBatch threw: kafkajs catches it, logs it and retries,
 * so the check would otherwise only see that nothing was processed.
 */
function recordHandlerErrors(clientId: string) {
  return () => ({ log }: LogEntry) => {
    if (typeof log.message !== 'string' || !log.message.startsWith('Error when calling each')) return;
    const error = (log as { error?: unknown }).error;
    const text = error instanceof Error ? error.message : String(error);
    const entry = `${clientId}: ${text}`;
    if (!handlerErrors.includes(entry)) handlerErrors.push(entry);
  };
}

/**
 * `message`, followed by the errors learner handlers threw in this file so far, if any: the reason
 * a consumer processed nothing is usually there (a TODO, a typo, a wrong assumption).
 */
export function withHandlerErrors(message: string): string {
  if (handlerErrors.length === 0) return message;
  return `${message}\nMeanwhile your message handler threw (kafkajs caught it and retried):\n` +
    handlerErrors.slice(-3).map((entry) => `  ${entry}`).join('\n');
}

/** A client for the check itself or to hand to learner code; quiet, with a short retry budget. */
export function checkKafka(clientId = 'course-check'): Kafka {
  return new Kafka({
    clientId,
    brokers: kafkaBrokers(),
    logLevel: logLevel.ERROR,
    logCreator: recordHandlerErrors(clientId),
    connectionTimeout: 3_000,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
}

export interface GroupMember {
  clientId: string;
  memberId: string;
  partitions: number[];
}

export interface KafkaCheckContext {
  /** The check's own admin client, connected before the first test: for anything not tied to one topic. */
  readonly admin: Admin;
  /**
   * An admin client for one topic's work, connected on first use. kafkajs keeps one metadata view
   * per client and a refresh for one topic can drop another from it, so concurrent tests must not
   * share a client for topic lookups (offsets, partitions, deleting records).
   */
  adminFor(topic: string): Promise<Admin>;
  /** A client with its own id (member descriptions show it, so the check can tell members apart). */
  client(clientId?: string): Kafka;
  /** Creates a topic unique to this run with an explicit partition count; deleted after the file. */
  createTopic(prefix: string, partitions: number): Promise<string>;
  /** A consumer group id unique to this run. */
  groupId(prefix: string): string;
  /** The check's own producer (explicit default partitioner, acks from all replicas). */
  producer(): Promise<Producer>;
  /** Runs `stop` after the current test (after the file, when concurrent), even when the test fails. */
  cleanup(stop: () => Promise<unknown>): void;
  /** Committed offset per partition (-1 when nothing is committed). */
  committedOffsets(groupId: string, topic: string): Promise<Map<number, number>>;
  /** High watermark (the next offset to be written) per partition. */
  latestOffsets(topic: string): Promise<Map<number, number>>;
  describeGroup(groupId: string): Promise<GroupDescription>;
  /** The group's members and the partitions of `topic` each one owns (empty unless it is Stable). */
  groupMembers(groupId: string, topic: string): Promise<{ state: string; members: GroupMember[] }>;
  /** Reads the first `count` messages of a topic with a consumer of the check's own. */
  readMessages(topic: string, count: number, timeoutMs?: number): Promise<ReadMessage[]>;
}

export type ReadMessage = KafkaMessage & { partition: number };

export interface UseKafkaOptions {
  /**
   * The file's tests run concurrently (describe.concurrent): what they open is then torn down
   * after the whole file instead of after each test, which would stop a neighbour's consumers.
   */
  concurrent?: boolean;
}

/**
 * Kafka plumbing for one check file: an admin client, unique topics and groups, and teardown of
 * everything the tests open (clients, learner consumers, topics), whether the tests pass or fail.
 */
export function useKafka(options: UseKafkaOptions = {}): KafkaCheckContext {
  let admin: Admin | undefined;
  const topicAdmins = new Map<string, Promise<Admin>>();
  const topics: string[] = [];
  const groups: string[] = [];
  const afterTest: Array<() => Promise<unknown>> = [];

  async function runCleanups(): Promise<void> {
    const stops = afterTest.splice(0).reverse();
    const results = await Promise.allSettled(stops.map((stop) => stop()));
    for (const result of results) {
      if (result.status === 'rejected') console.warn('[kafka check] cleanup failed:', result.reason);
    }
  }

  beforeAll(async () => {
    admin = checkKafka('course-check-admin').admin();
    await admin.connect();
  });

  if (!options.concurrent) afterEach(runCleanups);

  afterAll(async () => {
    await runCleanups();
    const perTopic = await Promise.allSettled(topicAdmins.values());
    await Promise.allSettled(perTopic.map((result) => (result.status === 'fulfilled' ? result.value.disconnect() : undefined)));
    if (!admin) return;
    try {
      if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
      if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 5_000 }).catch(() => undefined);
    } finally {
      await admin.disconnect();
    }
  });

  function requireAdmin(): Admin {
    if (!admin) throw new Error('the Kafka admin client is only available inside tests (useKafka() connects it in beforeAll)');
    return admin;
  }

  const context: KafkaCheckContext = {
    get admin() {
      return requireAdmin();
    },

    adminFor(topic) {
      let connected = topicAdmins.get(topic);
      if (!connected) {
        const topicAdmin = checkKafka('course-check-admin').admin();
        connected = topicAdmin.connect().then(() => topicAdmin);
        topicAdmins.set(topic, connected);
      }
      return connected;
    },

    client: (clientId) => checkKafka(clientId),

    async createTopic(prefix, partitions) {
      const topic = uniqueName(prefix);
      topics.push(topic);
      await (await context.adminFor(topic)).createTopics({
        topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
        waitForLeaders: true,
      });
      return topic;
    },

    groupId(prefix) {
      const id = uniqueName(prefix);
      groups.push(id);
      return id;
    },

    async producer() {
      const producer = checkKafka('course-check-producer').producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        allowAutoTopicCreation: false,
      });
      await producer.connect();
      afterTest.push(() => producer.disconnect());
      return producer;
    },

    cleanup(stop) {
      afterTest.push(stop);
    },

    async committedOffsets(groupId, topic) {
      const [entry] = await (await context.adminFor(topic)).fetchOffsets({ groupId, topics: [topic] });
      return new Map((entry?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    },

    async latestOffsets(topic) {
      const offsets = await (await context.adminFor(topic)).fetchTopicOffsets(topic);
      return new Map(offsets.map((p) => [p.partition, Number(p.high)]));
    },

    async describeGroup(groupId) {
      const { groups: [group] } = await requireAdmin().describeGroups([groupId]);
      if (!group) throw new Error(`the broker did not describe group ${groupId}`);
      return group;
    },

    async groupMembers(groupId, topic) {
      const group = await context.describeGroup(groupId);
      const members = group.members.map((member) => {
        const decoded = member.memberAssignment.length > 0
          ? AssignerProtocol.MemberAssignment.decode(member.memberAssignment)
          : null;
        const partitions = [...(decoded?.assignment[topic] ?? [])].sort((a, b) => a - b);
        return { clientId: member.clientId, memberId: member.memberId, partitions };
      });
      return { state: group.state, members };
    },

    async readMessages(topic, count, timeoutMs = 8_000) {
      const consumer: Consumer = checkKafka('course-check-reader').consumer({
        groupId: context.groupId('check-reader'),
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
    },
  };
  return context;
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

/** Resolves with the exit of a process, or fails with a message if it is still running after `ms`. */
export async function exitWithin<T>(exited: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message())), ms);
  });
  try {
    return await Promise.race([exited, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
