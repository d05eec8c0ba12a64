import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import pg from 'pg';
import { locationInGradedCode, todoMessage } from '../tooling/course/todo.ts';
import { describe, expect, test as base, vi, type CheckFixtures } from './support/fixtures.ts';
import { gradedFolder, lessonFile } from './support/lesson.ts';
import { outputTail, type LessonProcess } from './support/processes.ts';
import { scanKeys } from './support/redis.ts';
import { serviceUrl } from './support/services.ts';
import { startGateway, type RunningGateway } from '@lesson/18-monolith-breakup/gateway/app.ts';
import { loadGatewayConfig } from '@lesson/18-monolith-breakup/gateway/config.ts';
import { migrate } from '@lesson/18-monolith-breakup/platform/db.ts';
import { newEvent, type AnyEnvelope } from '@lesson/18-monolith-breakup/platform/events.ts';
import { provisionDatabases, type ServiceDatabase } from '@lesson/18-monolith-breakup/platform/provision.ts';
import { confirmOrder, placeOrder } from '@lesson/18-monolith-breakup/services/orders/orders.ts';
import { capturePayment } from '@lesson/18-monolith-breakup/services/payments/payments.ts';

const SLUG = '18-monolith-breakup';
const WHERE = gradedFolder(SLUG);
const at = (file: string) => `${WHERE}/${file}`;

const SERVICES = ['users', 'orders', 'payments', 'notifications'] as const;
type ServiceName = (typeof SERVICES)[number];
type RouteName = 'users' | 'sessions' | 'orders' | 'payments';

const JWT_SECRET = `check-secret-${randomBytes(24).toString('hex')}`;
const JWT_ISSUER = 'shop-users';
const JWT_AUDIENCE = 'shop';
const LEASE_TTL_SECONDS = 2;
const WAIT = { timeout: 10_000, interval: 50 };
// A service is a tsx process: its start takes a second when idle, and well over 30 s when two cores
// run a whole suite (seen). The requirements that start processes get limits to match.
const READY_MS = 60_000;

// ---------------------------------------------------------------------------------------------
// The shop under test: databases provisioned by the lesson's code, service and gateway processes,
// in-process gateways, and backends of the check's own (registered in etcd like instances, so the
// gateway can be observed from the side of whatever it proxies to).
// ---------------------------------------------------------------------------------------------

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

type FakeHandler = (request: Recorded) => { status?: number; body?: unknown; delayMs?: number } | undefined;

/** An HTTP server of the check's that records what reaches it and answers JSON. */
class Backend {
  readonly received: Recorded[] = [];
  private server: Server | undefined;
  url = '';

  constructor(
    readonly name: string,
    private readonly handler: FakeHandler = () => undefined,
  ) {}

  async start(): Promise<this> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const recorded = { method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks) };
        this.received.push(recorded);
        const answer = this.handler(recorded) ?? {};
        const reply = () => {
          if (response.destroyed) return;
          response.writeHead(answer.status ?? 200, { 'content-type': 'application/json', 'x-served-by': this.name });
          response.end(JSON.stringify(answer.body ?? { servedBy: this.name, method: recorded.method, url: recorded.url }));
        };
        if (answer.delayMs) setTimeout(reply, answer.delayMs).unref();
        else reply();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Stops answering: connections are refused from now on. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * A TCP relay in front of etcd that counts the requests its clients open. etcd speaks gRPC over
 * HTTP/2, where every call (a Range, a Put, a Watch stream) is a new stream, opened by a HEADERS
 * frame with a new stream id: counting those counts calls, whatever HPACK did to their paths. A
 * watch is one long stream opened once; a poller opens one more with every read.
 */
class EtcdCallCounter {
  private calls = 0;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly url: string,
  ) {}

  static async start(etcdUrl: string): Promise<EtcdCallCounter> {
    const target = new URL(etcdUrl.split(',')[0]!.trim());
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const counter = new EtcdCallCounter(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('connection', (client) => counter.relay(client, target.hostname, Number(target.port || 2379)));
    return counter;
  }

  /** Calls opened by clients so far, on every connection. */
  get callsOpened(): number {
    return this.calls;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: net.Socket, host: string, port: number): void {
    const upstream = net.connect(port, host);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const streams = new Set<number>();
    let pending = Buffer.alloc(0);
    let prefaceLeft = 24; // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    let payloadLeft = 0;
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      let data = chunk;
      const skipped = Math.min(prefaceLeft, data.length);
      prefaceLeft -= skipped;
      data = data.subarray(skipped);
      while (data.length > 0) {
        if (payloadLeft > 0) {
          const skip = Math.min(payloadLeft, data.length);
          payloadLeft -= skip;
          data = data.subarray(skip);
          continue;
        }
        // A frame header: length (3 bytes), type, flags, stream id (4 bytes).
        const take = data.subarray(0, 9 - pending.length);
        pending = Buffer.concat([pending, take]);
        data = data.subarray(take.length);
        if (pending.length < 9) break;
        const header = pending;
        pending = Buffer.alloc(0);
        payloadLeft = header.readUIntBE(0, 3);
        const stream = header.readUInt32BE(5) & 0x7fffffff;
        if (header[3] === 0x1 && !streams.has(stream)) {
          streams.add(stream);
          this.calls += 1;
        }
      }
    });
  }
}

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

class Shop {
  /** The registry root: the etcd fixture's prefix, deleted after the test. */
  readonly root: string;
  readonly exchange: string;
  readonly queuePrefix: string;
  readonly bullPrefix: string;
  readonly dbPrefix: string;
  databases: Record<ServiceName, ServiceDatabase> | undefined;
  private provisioning: Promise<Record<ServiceName, ServiceDatabase>> | undefined;
  private readonly processes: LessonProcess[] = [];
  private readonly gateways: RunningGateway[] = [];
  private readonly backends: Backend[] = [];
  private readonly pools: pg.Pool[] = [];
  private readonly counters: EtcdCallCounter[] = [];

  constructor(private readonly fixtures: Pick<CheckFixtures, 'procs' | 'etcd' | 'redis' | 'rabbit' | 'unique'>) {
    const { etcd, redis, rabbit, unique } = fixtures;
    this.root = etcd.prefix;
    this.exchange = rabbit.exchange(unique('shop-events'));
    this.queuePrefix = unique('shop');
    for (const service of SERVICES) rabbit.queue(`${this.queuePrefix}.${service}`);
    this.bullPrefix = redis.key('bull');
    this.dbPrefix = unique('shop').toLowerCase().replace(/[^a-z0-9]/g, '_');
  }

  /** Each service's role and schema, made by the lesson's provisionDatabases (platform/provision.ts). */
  provision(): Promise<Record<ServiceName, ServiceDatabase>> {
    // Services started together share one provisioning.
    this.provisioning ??= this.provisionOnce();
    return this.provisioning;
  }

  private async provisionOnce(): Promise<Record<ServiceName, ServiceDatabase>> {
    const made = await provisionDatabases(serviceUrl('postgres'), this.dbPrefix, SERVICES);
    for (const service of SERVICES) {
      const database = made[service];
      if (!database?.url || !database.role || !database.schema) {
        throw new Error(`provisionDatabases returned no role, schema and url for the ${service} service (${at('platform/provision.ts')})`);
      }
    }
    this.databases = made as Record<ServiceName, ServiceDatabase>;
    return this.databases;
  }

  /** A pool as the service itself connects (its own role and schema). */
  async poolOf(service: ServiceName): Promise<pg.Pool> {
    const pool = new pg.Pool({ connectionString: (await this.provision())[service].url, max: 3 });
    pool.on('error', () => {});
    this.pools.push(pool);
    return pool;
  }

  /** The administrator's view of a service's table. */
  async adminQuery<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    const pool = await this.adminPool();
    return (await pool.query<R>(sql, params)).rows;
  }

  private admin: pg.Pool | undefined;
  private async adminPool(): Promise<pg.Pool> {
    if (!this.admin) {
      this.admin = new pg.Pool({ connectionString: serviceUrl('postgres'), max: 3 });
      this.admin.on('error', () => {});
    }
    return this.admin;
  }

  schemaOf(service: ServiceName): string {
    return this.databases![service].schema;
  }

  private baseEnv(): Record<string, string> {
    return {
      ETCD_URL: serviceUrl('etcd'),
      REGISTRY_ROOT: this.root,
      REDIS_URL: serviceUrl('redis'),
      JWT_SECRET,
      JWT_ISSUER,
      JWT_AUDIENCE,
    };
  }

  /** Starts a service process and waits until it says it is ready (listening and registered). */
  async startService(service: ServiceName, instanceId = `${service}-${randomUUID().slice(0, 8)}`): Promise<{ process: LessonProcess; url: string; instanceId: string }> {
    const databases = await this.provision();
    const process = this.fixtures.procs.start(SLUG, `services/${service}/main.ts`, {
      name: `the ${service} service (${instanceId})`,
      env: {
        ...this.baseEnv(),
        // Port 0: the service listens on any free port and says which in its ready line.
        PORT: '0',
        DATABASE_URL: databases[service].url,
        AMQP_URL: serviceUrl('rabbitmq'),
        EVENTS_EXCHANGE: this.exchange,
        QUEUE_PREFIX: this.queuePrefix,
        LEASE_TTL_SECONDS: String(LEASE_TTL_SECONDS),
        INSTANCE_ID: instanceId,
        OUTBOX_POLL_MS: '50',
        BULL_PREFIX: this.bullPrefix,
      },
    });
    this.processes.push(process);
    const [, url] = await process.waitForOutput(/\] ready: (http:\/\/[\d.]+:\d+)/, 'became ready (listening, and registered in etcd)', READY_MS);
    return { process, url: url!, instanceId };
  }

  gatewayEnv(extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...this.baseEnv(),
      MONOLITH_URL: 'http://127.0.0.1:9',
      RATE_LIMIT_PREFIX: this.fixtures.redis.key('rate-limit:'),
      RATE_LIMIT_MAX: '1000',
      RATE_LIMIT_WINDOW_MS: '60000',
      TRUSTED_PROXY_HOPS: '1',
      OVERVIEW_TIMEOUT_MS: '800',
      ...extra,
    };
  }

  /** The gateway as a process of its own (GATEWAY_NAME names its log lines). */
  async startGatewayProcess(name: string, extra: Record<string, string> = {}): Promise<{ process: LessonProcess; url: string }> {
    const process = this.fixtures.procs.start(SLUG, 'gateway/main.ts', {
      name: `the gateway (${name})`,
      env: { ...this.gatewayEnv(extra), GATEWAY_NAME: name, PORT: '0' },
    });
    this.processes.push(process);
    const [, url] = await process.waitForOutput(/\] ready: (http:\/\/[\d.]+:\d+)/, 'became ready', READY_MS);
    return { process, url: url! };
  }

  /** The gateway in this process (startGateway of gateway/app.ts), closed after the test. */
  async startGatewayHere(extra: Record<string, string> = {}): Promise<RunningGateway> {
    const config = loadGatewayConfig({ ...this.gatewayEnv(extra), GATEWAY_NAME: 'gateway', PORT: '0' });
    const gateway = await startGateway(config);
    this.gateways.push(gateway);
    return gateway;
  }

  /** A relay in front of etcd that counts the calls made through it; closed after the gateways. */
  async etcdCallCounter(): Promise<EtcdCallCounter> {
    const counter = await EtcdCallCounter.start(serviceUrl('etcd'));
    this.counters.push(counter);
    return counter;
  }

  /** A backend of the check's, not registered anywhere (a monolith stand-in). */
  async backend(name: string, handler?: FakeHandler): Promise<Backend> {
    const backend = await new Backend(name, handler).start();
    this.backends.push(backend);
    return backend;
  }

  /** A backend of the check's registered as an instance of a service, as the services register. */
  async instance(service: string, handler?: FakeHandler, instanceId = `${service}-fake-${randomUUID().slice(0, 6)}`): Promise<Backend> {
    const backend = await this.backend(instanceId, handler);
    await this.fixtures.etcd.connect().put(this.instanceKey(service, instanceId)).value(JSON.stringify({ service, instanceId, url: backend.url }));
    return backend;
  }

  async deregister(service: string, instanceId: string): Promise<void> {
    await this.fixtures.etcd.connect().delete().key(this.instanceKey(service, instanceId));
  }

  instanceKey(service: string, instanceId: string): string {
    return `${this.root}services/${service}/${instanceId}`;
  }

  /** The strangler switch of a route: `<root>routes/<name>`. */
  async switchRoute(route: RouteName, to: 'service' | 'monolith'): Promise<void> {
    await this.fixtures.etcd.connect().put(`${this.root}routes/${route}`).value(to);
  }

  async switchAll(to: 'service' | 'monolith'): Promise<void> {
    for (const route of ['users', 'sessions', 'orders', 'payments'] as const) await this.switchRoute(route, to);
  }

  /**
   * Runs a requirement; if it fails while a lesson process printed a TODO, the TODO (and where it
   * is thrown) is the message: that is what the learner has to write next.
   */
  async explain<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      for (const process of this.processes) {
        const output = process.output();
        const todo = /\bTODO: ([\w.]+)/.exec(output);
        if (todo) throw new Error(todoMessage(todo[1]!, locationInGradedCode(output.slice(todo.index))), { cause: error });
      }
      throw error;
    }
  }

  async teardown(): Promise<void> {
    await Promise.allSettled(this.gateways.splice(0).map((gateway) => gateway.close()));
    await Promise.allSettled(this.counters.splice(0).map((counter) => counter.close()));
    for (const process of this.processes.splice(0).reverse()) await process.stop();
    await Promise.allSettled(this.backends.splice(0).map((backend) => backend.stop()));
    await Promise.allSettled(this.pools.splice(0).map((pool) => pool.end()));
    await this.dropDatabases().catch(() => {});
    await this.admin?.end().catch(() => {});
    await deleteBullKeys(this.fixtures, this.bullPrefix);
  }

  /** Drops every schema and role named with this test's prefix, whatever provisionDatabases made. */
  private async dropDatabases(): Promise<void> {
    const pool = await this.adminPool();
    const like = `${this.dbPrefix.replace(/_/g, '\\_')}%`;
    const schemas = await pool.query<{ nspname: string }>('SELECT nspname FROM pg_namespace WHERE nspname LIKE $1', [like]);
    for (const { nspname } of schemas.rows) await pool.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(nspname)} CASCADE`);
    const roles = await pool.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname LIKE $1', [like]);
    for (const { rolname } of roles.rows) {
      await pool.query(`DROP OWNED BY ${pg.escapeIdentifier(rolname)}`);
      await pool.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(rolname)}`);
    }
  }
}

async function deleteBullKeys(fixtures: Pick<CheckFixtures, 'redis'>, prefix: string): Promise<void> {
  // Under the redis fixture's prefix, so its teardown deletes them too; this only makes sure.
  const client = fixtures.redis.connect();
  const keys = await scanKeys(client, `${prefix}:*`).catch(() => []);
  if (keys.length > 0) await client.del(...keys).catch(() => 0);
}

const test = base.extend<{ shop: Shop }>({
  shop: async ({ procs, etcd, redis, rabbit, unique }, use) => {
    const shop = new Shop({ procs, etcd, redis, rabbit, unique });
    await use(shop);
    await shop.teardown();
  },
});

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

async function token(userId: string, options: { secret?: string; expiresIn?: string | number; issuer?: string; audience?: string } = {}): Promise<string> {
  const jwt = new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(options.issuer ?? JWT_ISSUER)
    .setAudience(options.audience ?? JWT_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '10m');
  if (userId) jwt.setSubject(userId);
  return jwt.sign(new TextEncoder().encode(options.secret ?? JWT_SECRET));
}

/** An unsigned token ("alg": "none") that says whatever a client wants. */
function unsignedToken(userId: string): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ sub: userId, iss: JWT_ISSUER, aud: JWT_AUDIENCE, exp: now + 600 })}.`;
}

async function send(
  base: string,
  method: string,
  path: string,
  options: { token?: string; headers?: Record<string, string>; body?: unknown; raw?: Buffer; contentType?: string; timeoutMs?: number } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: Buffer | string | undefined;
  if (options.raw) {
    body = options.raw;
    headers['content-type'] = options.contentType ?? 'application/octet-stream';
  } else if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    headers['content-type'] = options.contentType ?? 'application/json';
  }
  const response = await fetch(`${base}${path}`, { method, headers, body, signal: AbortSignal.timeout(options.timeoutMs ?? 8_000) });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: response.status, headers: response.headers, body: parsed, text };
}

function describeAnswer(answer: Answer): string {
  return `${answer.status} ${answer.text.slice(0, 300)}`;
}

// ---------------------------------------------------------------------------------------------
// The requirements
// ---------------------------------------------------------------------------------------------

describe.concurrent('18 monolith breakup', () => {
  test("the monolith's own tests and each service's own tests pass", async () => {
    const folder = lessonFile(SLUG, '');
    const report = join(tmpdir(), `lesson-18-own-tests-${randomUUID().slice(0, 8)}.json`);
    const vitest = join(createRequire(import.meta.url).resolve('vitest/package.json'), '..', 'vitest.mjs');
    const child = spawn(process.execPath, [vitest, 'run', '--root', folder, '--reporter=dot', '--reporter=json', `--outputFile.json=${report}`], {
      env: { ...process.env, DATABASE_URL: serviceUrl('postgres'), REDIS_URL: serviceUrl('redis'), NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    const { readFileSync, rmSync } = await import('node:fs');
    let results: { testResults?: Array<{ name: string; message?: string; assertionResults: Array<{ fullName: string; status: string; failureMessages: string[] }> }> };
    try {
      results = JSON.parse(readFileSync(report, 'utf8')) as typeof results;
    } catch {
      throw new Error(`the lesson's tests did not run (vitest exited with ${code}). Its output:\n${outputTail(output)}`);
    } finally {
      rmSync(report, { force: true });
    }
    const files = results.testResults ?? [];
    const suites = new Set(files.map((file) => file.name.slice(folder.length).replace(/^\//, '')));
    for (const expected of ['monolith/monolith.test.ts', ...SERVICES.map((s) => `services/${s}/${s}.test.ts`)]) {
      expect(suites.has(expected), `the lesson's own test suite ${at(expected)} did not run`).toBe(true);
    }
    const failures: string[] = [];
    for (const file of files) {
      const where = file.name.slice(folder.length).replace(/^\//, '');
      if (file.message) failures.push(`${where} did not load: ${file.message.split('\n')[0]}`);
      for (const test of file.assertionResults) {
        if (test.status !== 'failed') continue;
        const message = test.failureMessages[0] ?? '';
        const todo = /TODO: ([\w.]+)/.exec(message);
        const detail = todo ? todoMessage(todo[1]!, locationInGradedCode(message.slice(todo.index))) : message.split('\n')[0];
        failures.push(`${where}: "${test.fullName}" failed: ${detail}`);
      }
    }
    // A TODO thrown inside an app under test shows as a 500 in the test and as a log line with its stack.
    const todo = /\bTODO: ([\w.]+)/.exec(output);
    const cause = todo ? `${todoMessage(todo[1]!, locationInGradedCode(output.slice(todo.index)))}\n` : '';
    expect(failures, `${cause}these tests of the lesson's own suites failed:\n${failures.join('\n')}`).toEqual([]);
  }, 180_000); // five suites in a vitest of their own: well over 90 s on two busy cores

  test('end to end through the gateway: a new user is welcomed, and their order is paid, confirmed and emailed (emails as bull jobs)', async ({ shop, redis }) => {
    await shop.explain(async () => {
      await shop.switchAll('service');
      await Promise.all(SERVICES.map((service) => shop.startService(service)));
      const gateway = await shop.startGatewayProcess('gateway');
      const email = `ada-${randomUUID().slice(0, 8)}@example.com`;

      const signUp = await send(gateway.url, 'POST', '/users', { body: { email, name: 'Ada', password: 'correct horse battery' } });
      expect(signUp.status, `signing up through the gateway should answer 201; it answered ${describeAnswer(signUp)}`).toBe(201);
      const userId = (signUp.body as { id: string }).id;
      const session = await send(gateway.url, 'POST', '/sessions', { body: { email, password: 'correct horse battery' } });
      expect(session.status, `signing in through the gateway should answer 201 with a token; it answered ${describeAnswer(session)}`).toBe(201);
      const accessToken = (session.body as { token: string }).token;

      const placed = await send(gateway.url, 'POST', '/orders', { token: accessToken, body: { lines: [{ sku: 'tea', quantity: 10, unitPriceCents: 450 }] } });
      expect(placed.status, `placing an order through the gateway should answer 201; it answered ${describeAnswer(placed)} (${at('services/orders/orders.ts')})`).toBe(201);
      const order = placed.body as { id: string; status: string; totalCents: number };
      expect(order.totalCents, 'the orders service prices the order (10 items: 10% off)').toBe(4050);

      await vi.waitFor(async () => {
        const current = await send(gateway.url, 'GET', `/orders/${order.id}`, { token: accessToken });
        expect((current.body as { status?: string }).status, `the order was never confirmed: OrderPlaced → payments → PaymentCaptured → orders (${at('services/payments/payments.ts')}, ${at('services/orders/orders.ts')})`).toBe('confirmed');
      }, { timeout: 20_000, interval: 200 });
      const payments = await send(gateway.url, 'GET', `/payments?userId=${userId}`, { token: accessToken });
      expect(payments.body, `the payments service should list one captured payment of the order's total (${at('services/payments/payments.ts')})`).toEqual([
        { id: expect.any(String), orderId: order.id, userId, amountCents: 4050, status: 'captured' },
      ]);

      const notifications = shop.schemaOf('notifications');
      await vi.waitFor(async () => {
        const sent = await shop.adminQuery<{ kind: string; to_address: string; job_id: string }>(
          `SELECT kind, to_address, job_id FROM ${pg.escapeIdentifier(notifications)}.sent_emails WHERE user_id = $1 ORDER BY id`,
          [userId],
        );
        expect(sent.map((row) => `${row.kind} to ${row.to_address}`), 'the user should get a welcome email and then the order confirmation').toEqual([
          `welcome to ${email}`,
          `order-confirmed to ${email}`,
        ]);
      }, { timeout: 20_000, interval: 200 });

      const client = redis.connect();
      const completed = await client.zrange(`${shop.bullPrefix}:emails:completed`, 0, -1);
      expect(completed.filter((id) => id.startsWith('welcome:') || id.startsWith('order-confirmed:')), 'both emails should be completed bull jobs').toHaveLength(2);

      const overview = await send(gateway.url, 'GET', '/me/overview', { token: accessToken });
      expect(overview.body, `the overview should show the user with the order and the payment (${at('gateway/overview.ts')})`).toMatchObject({
        user: { id: userId, email, name: 'Ada' },
        orders: [{ id: order.id, status: 'confirmed', totalCents: 4050 }],
        payments: [{ orderId: order.id, amountCents: 4050 }],
        partial: false,
      });
    });
  }, 150_000);

  test('a request with a missing, malformed, forged or expired token gets 401 and reaches no backend', async ({ shop }) => {
    const monolith = await shop.backend('monolith');
    const gateway = await shop.startGatewayHere({ MONOLITH_URL: monolith.url });
    const userId = randomUUID();

    const good = await send(gateway.url, 'GET', `/orders?userId=${userId}`, { token: await token(userId), headers: { 'x-user-id': 'someone-else' } });
    expect(good.status, `a valid token should reach the monolith; the gateway answered ${describeAnswer(good)} (${at('gateway/auth.ts')})`).toBe(200);
    expect(monolith.received.at(-1)?.headers['x-user-id'], `the backend should get X-User-Id from the verified token, never the client's own header (${at('gateway/proxy.ts')})`).toBe(userId);
    const publicCall = await send(gateway.url, 'POST', '/users', { body: { email: 'x@example.com' }, headers: { 'x-user-id': userId } });
    expect(publicCall.status, `POST /users (signing up) needs no token (${at('gateway/auth.ts')})`).toBe(200);
    expect(monolith.received.at(-1)?.headers['x-user-id'], `a request without a token must not carry a client's X-User-Id to the backend (${at('gateway/proxy.ts')})`).toBeUndefined();

    const reached = monolith.received.length;
    const cases: Array<[string, Record<string, string>]> = [
      ['no Authorization header', {}],
      ['"Bearer" with no token', { authorization: 'Bearer' }],
      ['a token that is not a JWT', { authorization: 'Bearer not-a-token' }],
      ['Basic credentials', { authorization: `Basic ${Buffer.from('ada:secret').toString('base64')}` }],
      ['a token signed with another secret', { authorization: `Bearer ${await token(userId, { secret: 'a-different-secret-of-more-than-32-bytes!!' })}` }],
      ['an unsigned token (alg "none")', { authorization: `Bearer ${unsignedToken(userId)}` }],
      ['an expired token', { authorization: `Bearer ${await token(userId, { expiresIn: Math.floor(Date.now() / 1000) - 60 })}` }],
      ['a token for another audience', { authorization: `Bearer ${await token(userId, { audience: 'another-api' })}` }],
      ['a token from another issuer', { authorization: `Bearer ${await token(userId, { issuer: 'someone-else' })}` }],
      ['a token without a subject', { authorization: `Bearer ${await token('')}` }],
    ];
    for (const [what, headers] of cases) {
      for (const [method, path] of [['GET', `/orders?userId=${userId}`], ['POST', '/orders'], ['GET', `/users/${userId}`]] as const) {
        const answer = await send(gateway.url, method, path, { headers, body: method === 'POST' ? { lines: [] } : undefined });
        expect(answer.status, `${method} ${path} with ${what} should get 401 from the gateway; it got ${describeAnswer(answer)} (${at('gateway/auth.ts')})`).toBe(401);
      }
    }
    expect(monolith.received.slice(reached).map((r) => `${r.method} ${r.url}`), `requests that were refused must not reach any backend (${at('gateway/auth.ts')})`).toEqual([]);
  });

  test('POST bodies and full paths reach the backend intact through the proxy', async ({ shop }) => {
    const monolith = await shop.backend('monolith');
    const gateway = await shop.startGatewayHere({ MONOLITH_URL: monolith.url });
    const userId = randomUUID();
    const accessToken = await token(userId);

    const json = { lines: [{ sku: 'thé vert – 緑茶', quantity: 2, unitPriceCents: 450 }], note: 'x'.repeat(200_000) };
    let answer: Answer;
    try {
      answer = await send(gateway.url, 'POST', '/orders?source=check&tag=a%20b', { token: accessToken, body: json, timeoutMs: 6_000 });
    } catch (error) {
      throw new Error(
        `a JSON POST through the gateway got no answer within 6 s (${(error as Error).message}): a body parser ran before the proxy and ` +
          `consumed the body, so the proxied request waits for a body that never comes (${at('gateway/proxy.ts')})`,
        { cause: error },
      );
    }
    expect(answer.status, `the JSON POST should reach the monolith; the gateway answered ${describeAnswer(answer)} (${at('gateway/proxy.ts')})`).toBe(200);
    const got = monolith.received.at(-1)!;
    expect(`${got.method} ${got.url}`, `the backend should get the full original path and query; a proxy mounted at /orders strips the mount path unless it is put back (${at('gateway/proxy.ts')})`).toBe(
      'POST /orders?source=check&tag=a%20b',
    );
    expect(JSON.parse(got.body.toString('utf8')) as unknown, `the JSON body should arrive as sent (${at('gateway/proxy.ts')})`).toEqual(json);
    expect(Number(got.headers['content-length']), 'Content-Length should match the body that arrived').toBe(got.body.length);

    const binary = randomBytes(100_000);
    const raw = await send(gateway.url, 'POST', `/users/${userId}/avatar`, { token: accessToken, raw: binary, timeoutMs: 6_000 });
    expect(raw.status, `a binary POST should reach the monolith; the gateway answered ${describeAnswer(raw)} (${at('gateway/proxy.ts')})`).toBe(200);
    const gotRaw = monolith.received.at(-1)!;
    expect(gotRaw.url, `the full path should arrive (${at('gateway/proxy.ts')})`).toBe(`/users/${userId}/avatar`);
    expect(gotRaw.body.equals(binary), `the binary body should arrive byte for byte (${gotRaw.body.length} of ${binary.length} bytes arrived) (${at('gateway/proxy.ts')})`).toBe(true);

    const get = await send(gateway.url, 'GET', `/orders/${randomUUID()}`, { token: accessToken });
    expect(get.status).toBe(200);
    expect(monolith.received.at(-1)!.url, `GET /orders/<id> should arrive as /orders/<id> (${at('gateway/proxy.ts')})`).toMatch(/^\/orders\/[0-9a-f-]{36}$/);
    expect(monolith.received.at(-1)!.headers['x-request-id'], `the proxied request should carry the request id (${at('gateway/proxy.ts')})`).toBe(get.headers.get('x-request-id'));
  });

  test('the rate limit is shared by two gateway instances and counts each client behind the load balancer separately', async ({ shop }) => {
    await shop.explain(async () => {
      const monolith = await shop.backend('monolith');
      const limits = { MONOLITH_URL: monolith.url, RATE_LIMIT_MAX: '4', RATE_LIMIT_WINDOW_MS: '120000', TRUSTED_PROXY_HOPS: '1' };
      const [a, b] = await Promise.all([shop.startGatewayProcess('gateway-a', limits), shop.startGatewayProcess('gateway-b', limits)]);
      const accessToken = await token(randomUUID());
      // The check is the load balancer: it appends the address each client connected from.
      const from = (client: string, spoofed?: string) => ({ token: accessToken, headers: { 'x-forwarded-for': spoofed ? `${spoofed}, ${client}` : client } });
      const ada = '203.0.113.10';
      const grace = '203.0.113.20';

      const firstFour: number[] = [];
      for (const gateway of [a, b, a, b]) firstFour.push((await send(gateway.url, 'GET', '/orders', from(ada))).status);
      expect(firstFour, `a client's first 4 requests (the limit), 2 on each gateway, should pass (${at('gateway/rate-limit.ts')})`).toEqual([200, 200, 200, 200]);
      const fifth = await send(a.url, 'GET', '/orders', from(ada));
      expect(fifth.status, `the client's 5th request should get 429: the two gateways must share one count in Redis, not one each (${at('gateway/rate-limit.ts')})`).toBe(429);
      expect((await send(b.url, 'GET', '/orders', from(ada))).status, `the other gateway should refuse the client too (${at('gateway/rate-limit.ts')})`).toBe(429);
      const spoofing = await send(b.url, 'GET', '/orders', from(ada, '198.51.100.7'));
      expect(spoofing.status, `a client that writes its own X-Forwarded-For must still be counted by the address the load balancer saw: trust exactly the proxies in front ('trust proxy' = the number of hops, not true) (${at('gateway/rate-limit.ts')})`).toBe(429);
      const other = await send(a.url, 'GET', '/orders', from(grace));
      expect(other.status, `another client behind the same load balancer has its own count; with 'trust proxy' unset every client is the load balancer's address, one bucket for all (${at('gateway/rate-limit.ts')})`).toBe(200);
    });
  });

  test('the request id appears in the log of every service the request touched', async ({ shop, rabbit }) => {
    await shop.explain(async () => {
      await shop.switchAll('service');
      const [orders, payments, notifications] = await Promise.all([shop.startService('orders'), shop.startService('payments'), shop.startService('notifications')]);
      const gateway = await shop.startGatewayProcess('gateway');
      const userId = randomUUID();
      // The user signed up earlier: notifications knows their address.
      const channel = await rabbit.confirmChannel();
      const registered = newEvent('UserRegistered', { userId, email: 'grace@example.com', name: 'Grace' }, undefined);
      channel.publish(shop.exchange, 'UserRegistered', Buffer.from(JSON.stringify(registered)), { persistent: true });
      await channel.waitForConfirms();

      const placed = await send(gateway.url, 'POST', '/orders', { token: await token(userId), body: { lines: [{ sku: 'tea', quantity: 1, unitPriceCents: 450 }] } });
      expect(placed.status, `placing an order should answer 201; it answered ${describeAnswer(placed)}`).toBe(201);
      const requestId = placed.headers.get('x-request-id');
      expect(requestId, 'the gateway should answer with the request id in X-Request-Id').toBeTruthy();
      await vi.waitFor(async () => {
        const sent = await shop.adminQuery(`SELECT 1 FROM ${pg.escapeIdentifier(shop.schemaOf('notifications'))}.sent_emails WHERE user_id = $1 AND kind = 'order-confirmed'`, [userId]);
        expect(sent, `the order confirmation email was never sent (${at('services/orders/orders.ts')}, ${at('services/payments/payments.ts')})`).toHaveLength(1);
      }, { timeout: 20_000, interval: 200 });

      const mark = `request=${requestId}`;
      const hops: Array<[string, LessonProcess, RegExp, string]> = [
        ['the gateway', gateway.process, /\] request=\S+ POST \/orders 201/, `the gateway logs each request with its id`],
        ['the orders service (the POST)', orders.process, /\] request=\S+ POST \/orders 201/, `the proxy sends the id to the service in X-Request-Id (${at('gateway/proxy.ts')})`],
        ['the payments service (OrderPlaced)', payments.process, /\] request=\S+ handled OrderPlaced/, `OrderPlaced carries the request id of the request that placed the order (${at('services/orders/orders.ts')})`],
        ['the orders service (PaymentCaptured)', orders.process, /\] request=\S+ handled PaymentCaptured/, `PaymentCaptured carries the request id of the OrderPlaced it answers (${at('services/payments/payments.ts')})`],
        ['the notifications service (OrderConfirmed)', notifications.process, /\] request=\S+ handled OrderConfirmed/, `OrderConfirmed carries the request id of the PaymentCaptured it answers (${at('services/orders/orders.ts')})`],
      ];
      await vi.waitFor(() => {
        for (const [who, process, line, why] of hops) {
          const lines = process.output().split('\n').filter((text) => line.test(text));
          expect(lines.some((text) => text.includes(mark)), `${who} logged no line with ${mark}: ${why}. Its matching lines: ${lines.slice(-3).join(' | ') || 'none'}`).toBe(true);
        }
      }, { timeout: 5_000, interval: 100 });
    });
  }, 150_000);

  test('the overview answers with what the services answered, and is partial when payments is down or slow', async ({ shop }) => {
    const userId = randomUUID();
    const user = { id: userId, email: 'ada@example.com', name: 'Ada' };
    // The orders service applied a discount: the total is not the sum of the lines, and the gateway must not recompute it.
    const orders = [{ id: randomUUID(), userId, status: 'confirmed', lines: [{ sku: 'tea', quantity: 10, unitPriceCents: 450 }], totalCents: 4050, createdAt: '2026-01-01T10:00:00.000Z' }];
    const payments = [{ id: randomUUID(), orderId: orders[0]!.id, userId, amountCents: 4050, status: 'captured' }];
    const answer = (body: unknown): FakeHandler => () => ({ body });
    await shop.instance('users', answer(user));
    await shop.instance('orders', answer(orders));
    const paymentsInstance = await shop.instance('payments', answer(payments));
    for (const route of ['users', 'orders', 'payments'] as const) await shop.switchRoute(route, 'service');
    const gateway = await shop.startGatewayHere({ OVERVIEW_TIMEOUT_MS: '800' });
    const accessToken = await token(userId);

    await vi.waitFor(async () => {
      const full = await send(gateway.url, 'GET', '/me/overview', { token: accessToken });
      expect(full.body, `with every service up, the overview is exactly what they answered: user, orders and payments unchanged, partial false, nothing unavailable; the gateway composes, it computes nothing (${at('gateway/overview.ts')})`).toEqual({
        user,
        orders,
        payments,
        partial: false,
        unavailable: [],
      });
    }, WAIT);
    const paymentsCall = paymentsInstance.received.at(-1);
    expect(paymentsCall?.url, `the overview should ask payments for the user's payments (${at('gateway/overview.ts')})`).toBe(`/payments?userId=${userId}`);
    expect(paymentsCall?.headers['x-user-id'], `the overview's calls carry the user (${at('gateway/overview.ts')})`).toBe(userId);

    const partialOf = async (what: string) => {
      const started = Date.now();
      const degraded = await send(gateway.url, 'GET', '/me/overview', { token: accessToken, timeoutMs: 8_000 }).catch((error: Error) => {
        throw new Error(`with payments ${what}, the overview did not answer within 8 s (${error.message}): each call needs a timeout (${at('gateway/overview.ts')})`, { cause: error });
      });
      expect(degraded.status, `with payments ${what}, the overview should still answer 200; it answered ${describeAnswer(degraded)} (${at('gateway/overview.ts')})`).toBe(200);
      expect(degraded.body, `with payments ${what}, the overview should keep the user and orders, set payments to null and say it is partial (${at('gateway/overview.ts')})`).toEqual({
        user,
        orders,
        payments: null,
        partial: true,
        unavailable: ['payments'],
      });
      return Date.now() - started;
    };
    await paymentsInstance.stop();
    await partialOf('stopped (its instance still registered, refusing connections)');
    await shop.deregister('payments', paymentsInstance.name);
    await vi.waitFor(() => partialOf('gone from the registry'), WAIT);
    await shop.instance('payments', () => ({ body: payments, delayMs: 10_000 }), 'payments-slow');
    const tookMs = await partialOf('answering only after 10 s');
    expect(tookMs, `with payments slow, the overview should answer once its 800 ms timeout has passed, not wait for payments (${at('gateway/overview.ts')})`).toBeLessThan(5_000);
  });

  test('a gracefully stopped instance leaves the registry at once, and a SIGKILLed one once its lease expires; neither gets traffic after', async ({ shop, etcd }) => {
    await shop.explain(async () => {
      await shop.switchRoute('users', 'service');
      const instances = await Promise.all(['users-a', 'users-b', 'users-c'].map((id) => shop.startService('users', `${id}-${randomUUID().slice(0, 6)}`)));
      const [stopping, killed, survivor] = instances as [(typeof instances)[0], (typeof instances)[0], (typeof instances)[0]];
      const gateway = await shop.startGatewayHere();
      const userId = randomUUID();
      const accessToken = await token(userId);
      const servedBy = async (count: number): Promise<string[]> => {
        const answers: string[] = [];
        for (let i = 0; i < count; i++) {
          const answer = await send(gateway.url, 'GET', `/users/${userId}`, { token: accessToken });
          answers.push(answer.status >= 500 ? `${answer.status}` : (answer.headers.get('x-served-by') ?? '?'));
        }
        return answers;
      };

      for (const instance of instances) {
        const key = shop.instanceKey('users', instance.instanceId);
        const lease = await etcd.leaseOf(key);
        expect(lease, `${instance.instanceId} should be registered at ${key} (${at('platform/registry.ts')})`).toBeDefined();
        expect(lease!.lease, `${key} should be attached to a lease, so that it disappears when the instance dies (${at('platform/registry.ts')})`).not.toBe('0');
        expect(lease!.ttl, `the lease should have the configured TTL of ${LEASE_TTL_SECONDS} s (LEASE_TTL_SECONDS) (${at('platform/registry.ts')})`).toBeLessThanOrEqual(LEASE_TTL_SECONDS);
      }
      await vi.waitFor(async () => {
        expect(new Set(await servedBy(9)), `three registered instances should share the requests (${at('gateway/proxy.ts')})`).toEqual(new Set(instances.map((i) => i.instanceId)));
      }, WAIT);

      const exit = await stopping.process.stop(5_000);
      expect(exit.signal === null && exit.code === 0, `${stopping.instanceId} should exit 0 on SIGTERM`).toBe(true);
      expect(await etcd.leaseOf(shop.instanceKey('users', stopping.instanceId)), `a gracefully stopped instance should be gone from the registry when its process has exited: revoke its lease on SIGTERM (${at('platform/registry.ts')})`).toBeUndefined();
      // Its key is gone already (checked above): the bound is only the time a few requests take on a busy machine.
      await vi.waitFor(async () => expect(await servedBy(6), `no request should go to the stopped instance once its key is gone (${at('gateway/proxy.ts')})`).not.toContain(stopping.instanceId), { timeout: 6_000, interval: 50 });

      await killed.process.kill('SIGKILL');
      const killedAt = Date.now();
      const killedKey = shop.instanceKey('users', killed.instanceId);
      await vi.waitFor(async () => {
        expect(await etcd.leaseOf(killedKey), `the key of the SIGKILLed instance is still there ${((Date.now() - killedAt) / 1000).toFixed(1)} s later: only a lease that expires removes it (${at('platform/registry.ts')})`).toBeUndefined();
      }, { timeout: (LEASE_TTL_SECONDS + 6) * 1000, interval: 100 });
      await vi.waitFor(async () => {
        expect(await servedBy(8), `once its key is gone, every request should go to ${survivor.instanceId} (${at('gateway/proxy.ts')})`).toEqual(Array(8).fill(survivor.instanceId));
      }, { timeout: 6_000, interval: 100 });
    });
  }, 120_000);

  test("each service has its own role and schema, and the orders role is refused the users' tables (permission denied)", async ({ shop }) => {
    const databases = await shop.provision();
    const roles = SERVICES.map((s) => databases[s].role);
    const schemas = SERVICES.map((s) => databases[s].schema);
    expect(new Set(roles).size, `every service needs a role of its own; provisionDatabases gave ${roles.join(', ')} (${at('platform/provision.ts')})`).toBe(SERVICES.length);
    expect(new Set(schemas).size, `every service needs a schema of its own; provisionDatabases gave ${schemas.join(', ')} (${at('platform/provision.ts')})`).toBe(SERVICES.length);

    const attributes = await shop.adminQuery<{ rolname: string; rolsuper: boolean; rolcreaterole: boolean; rolcreatedb: boolean; rolcanlogin: boolean }>(
      'SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_roles WHERE rolname = ANY($1)',
      [roles],
    );
    for (const role of roles) {
      const found = attributes.find((row) => row.rolname === role);
      expect(found, `the role ${role} should exist in PostgreSQL (${at('platform/provision.ts')})`).toBeDefined();
      expect({ login: found!.rolcanlogin, superuser: found!.rolsuper, createrole: found!.rolcreaterole, createdb: found!.rolcreatedb }, `${role} should log in and nothing more (${at('platform/provision.ts')})`).toEqual({
        login: true,
        superuser: false,
        createrole: false,
        createdb: false,
      });
    }
    const owners = await shop.adminQuery<{ nspname: string; owner: string }>('SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = ANY($1)', [schemas]);
    for (const service of SERVICES) {
      expect(owners.find((row) => row.nspname === databases[service].schema)?.owner, `the ${service} schema should be owned by the ${service} role (${at('platform/provision.ts')})`).toBe(databases[service].role);
    }

    // Each service creates its own tables, as itself.
    for (const service of SERVICES) {
      const pool = await shop.poolOf(service);
      const current = await pool.query<{ who: string; schema: string }>('SELECT current_user AS who, current_schema() AS schema');
      expect(current.rows[0], `the ${service} service's DATABASE_URL should log in as its role, in its schema (${at('platform/provision.ts')})`).toEqual({ who: databases[service].role, schema: databases[service].schema });
      await migrate(pool, lessonFile(SLUG, `services/${service}/migrations`));
    }

    const orders = await shop.poolOf('orders');
    const usersTable = `${pg.escapeIdentifier(databases.users.schema)}.users`;
    for (const sql of [`SELECT * FROM ${usersTable}`, `INSERT INTO ${usersTable} (id, email, name, password_hash) VALUES (gen_random_uuid(), 'x@example.com', 'X', 'x')`]) {
      const outcome = await orders.query(sql).then(() => 'allowed', (error: { code?: string; message?: string }) => `${error.code}: ${error.message}`);
      expect(outcome, `as the orders role, "${sql.slice(0, 40)}…" should fail with 42501 permission denied (${at('platform/provision.ts')})`).toMatch(/^42501: permission denied/);
    }
    const leaks = await shop.adminQuery<{ who: string; whose: string; privilege: string }>(
      `SELECT r.rolname AS who, n.nspname AS whose, 'USAGE' AS privilege
         FROM pg_roles r CROSS JOIN pg_namespace n
        WHERE r.rolname = ANY($1) AND n.nspname = ANY($2) AND pg_get_userbyid(n.nspowner) <> r.rolname AND has_schema_privilege(r.rolname, n.nspname, 'USAGE')
       UNION ALL
       SELECT r.rolname, t.schemaname || '.' || t.tablename, 'SELECT'
         FROM pg_roles r CROSS JOIN pg_tables t
        WHERE r.rolname = ANY($1) AND t.schemaname = ANY($2) AND t.tableowner <> r.rolname AND has_table_privilege(r.rolname, quote_ident(t.schemaname) || '.' || quote_ident(t.tablename), 'SELECT')`,
      [roles, schemas],
    );
    expect(leaks.map((row) => `${row.who} has ${row.privilege} on ${row.whose}`), `no service's role may reach another service's schema or tables (${at('platform/provision.ts')})`).toEqual([]);

    // Provisioning again (a redeploy) keeps the data and gives working credentials.
    await orders.query(`INSERT INTO orders (id, user_id, status, lines, total_cents) VALUES (gen_random_uuid(), gen_random_uuid(), 'placed', '[]', 0)`);
    const again = await provisionDatabases(serviceUrl('postgres'), shop.dbPrefix, SERVICES);
    const rerun = new pg.Client({ connectionString: again.orders!.url });
    await rerun.connect();
    try {
      expect((await rerun.query('SELECT count(*)::int AS n FROM orders')).rows[0], `provisioning again should keep the orders and give the role a working password (${at('platform/provision.ts')})`).toEqual({ n: 1 });
    } finally {
      await rerun.end();
    }
  });

  test('flipping a path from the monolith to its service changes who answers, with no other change', async ({ shop }) => {
    const monolith = await shop.backend('monolith');
    const orders = await shop.instance('orders');
    const gateway = await shop.startGatewayHere({ MONOLITH_URL: monolith.url });
    const accessToken = await token(randomUUID());
    const whoAnswers = async (method: string, path: string) => {
      const answer = await send(gateway.url, method, path, { token: accessToken, body: method === 'POST' ? { lines: [] } : undefined });
      return answer.headers.get('x-served-by') ?? `nobody (${describeAnswer(answer)})`;
    };

    expect(await whoAnswers('GET', '/orders/1'), `with no switch set, every path goes to the monolith (${at('gateway/proxy.ts')})`).toBe('monolith');
    expect(await whoAnswers('GET', '/payments'), `with no switch set, every path goes to the monolith (${at('gateway/proxy.ts')})`).toBe('monolith');
    await shop.switchRoute('orders', 'service');
    await vi.waitFor(async () => {
      expect(await whoAnswers('GET', '/orders/1'), `after ${shop.root}routes/orders = service, /orders should be answered by the orders instance, with no restart (${at('gateway/proxy.ts')})`).toBe(orders.name);
    }, { timeout: 3_000, interval: 50 });
    expect(await whoAnswers('POST', '/orders'), `POST /orders should go to the orders service too (${at('gateway/proxy.ts')})`).toBe(orders.name);
    expect(await whoAnswers('GET', '/payments'), `the switch of /orders must not move /payments (${at('gateway/proxy.ts')})`).toBe('monolith');
    expect(await whoAnswers('GET', '/users/1'), `the switch of /orders must not move /users (${at('gateway/proxy.ts')})`).toBe('monolith');
    await shop.switchRoute('orders', 'monolith');
    await vi.waitFor(async () => {
      expect(await whoAnswers('GET', '/orders/1'), `switched back, /orders should go to the monolith again (${at('gateway/proxy.ts')})`).toBe('monolith');
    }, { timeout: 3_000, interval: 50 });
  });

  test('the gateway follows the registry through a watch: an instance registered or deregistered is routed to or dropped within 3 s, with no read of etcd meanwhile', async ({ shop }) => {
    // The gateway reaches etcd through a relay that counts its calls; the check writes to etcd directly.
    const counter = await shop.etcdCallCounter();
    const monolith = await shop.backend('monolith');
    await shop.switchRoute('orders', 'service');
    const first = await shop.instance('orders');
    const gateway = await shop.startGatewayHere({ ETCD_URL: counter.url, MONOLITH_URL: monolith.url });
    const accessToken = await token(randomUUID());
    const servedBy = async (count: number): Promise<string[]> => {
      const answers: string[] = [];
      for (let i = 0; i < count; i++) {
        const answer = await send(gateway.url, 'GET', '/orders/1', { token: accessToken });
        answers.push(answer.headers.get('x-served-by') ?? `${answer.status}`);
      }
      return answers;
    };
    await vi.waitFor(async () => {
      expect(await servedBy(2), `an instance registered before the gateway started should get its traffic: read what is under the prefix first (watchPrefix, ${at('platform/registry.ts')})`).toEqual([first.name, first.name]);
    }, WAIT);
    const callsBefore = counter.callsOpened;
    expect(callsBefore, 'the gateway should have talked to etcd through the relay').toBeGreaterThan(0);

    const second = await shop.instance('orders');
    const registeredAt = Date.now();
    await vi.waitFor(async () => {
      expect(await servedBy(4), `an instance registered ${((Date.now() - registeredAt) / 1000).toFixed(1)} s ago gets no traffic yet: the gateway should hear of a new key at once, from a watch on the prefix (watchPrefix, ${at('platform/registry.ts')})`).toContain(second.name);
    }, { timeout: 3_000, interval: 50 });
    await shop.deregister('orders', first.name);
    const deregisteredAt = Date.now();
    await vi.waitFor(async () => {
      expect(await servedBy(4), `an instance deregistered ${((Date.now() - deregisteredAt) / 1000).toFixed(1)} s ago still gets traffic: the gateway should hear of a deleted key at once, from a watch on the prefix (watchPrefix, ${at('platform/registry.ts')})`).toEqual(Array(4).fill(second.name));
    }, { timeout: 3_000, interval: 50 });

    const calls = counter.callsOpened - callsBefore;
    expect(calls, `while the gateway followed these two changes it made ${calls} more call(s) to etcd: it reads the registry again and again (polling) instead of watching it. One initial read, then one watch stream that etcd pushes every put and delete down (watchPrefix, ${at('platform/registry.ts')})`).toBe(0);
  });

  test('an order is accepted while payments is down, and confirmed once payments is back (an event, not a call)', async ({ shop, rabbit }) => {
    await shop.explain(async () => {
      // The payments queue exists (payments ran before; its queue outlives it), but no payments instance runs.
      const paymentsQueue = `${shop.queuePrefix}.payments`;
      const channel = await rabbit.channel();
      await channel.assertQueue(paymentsQueue, { durable: true, arguments: { 'x-queue-type': 'classic' } });
      await channel.assertExchange(shop.exchange, 'topic', { durable: true });
      await channel.bindQueue(paymentsQueue, shop.exchange, 'OrderPlaced');
      const orders = await shop.startService('orders');
      const userId = randomUUID();

      const started = Date.now();
      const placed = await send(orders.url, 'POST', '/orders', { headers: { 'x-user-id': userId }, body: { lines: [{ sku: 'tea', quantity: 2, unitPriceCents: 450 }] }, timeoutMs: 5_000 }).catch(
        (error: Error) => {
          throw new Error(`with payments down, POST /orders did not answer within 5 s (${error.message}): the orders service must not wait for payments (${at('services/orders/orders.ts')})`, { cause: error });
        },
      );
      expect(placed.status, `with payments down, an order should still be accepted with 201; it got ${describeAnswer(placed)}: the orders service must not call payments, it announces OrderPlaced (${at('services/orders/orders.ts')})`).toBe(201);
      expect(Date.now() - started, 'accepting the order should not wait for anything').toBeLessThan(3_000);
      const order = placed.body as { id: string; status: string };
      expect(order.status, 'the order is placed, not confirmed: nobody has paid yet').toBe('placed');
      await vi.waitFor(async () => {
        expect(await rabbit.readyMessages(paymentsQueue), `the OrderPlaced event should wait in the payments queue (published from the outbox) (${at('services/orders/orders.ts')})`).toBe(1);
      }, WAIT);
      const waiting = (await channel.get(paymentsQueue, { noAck: false })) || undefined;
      expect(waiting && (JSON.parse(waiting.content.toString()) as AnyEnvelope), 'the waiting message should be the OrderPlaced of the order').toMatchObject({ type: 'OrderPlaced', data: { orderId: order.id, userId, totalCents: 900 } });
      channel.nack(waiting!, false, true);
      await vi.waitFor(async () => expect(await rabbit.readyMessages(paymentsQueue)).toBe(1), WAIT);

      await shop.startService('payments');
      await vi.waitFor(async () => {
        const current = await send(orders.url, 'GET', `/orders/${order.id}`, { headers: { 'x-user-id': userId } });
        expect((current.body as { status?: string }).status, `once payments is back it captures the waiting order and the order is confirmed (${at('services/payments/payments.ts')}, ${at('services/orders/orders.ts')})`).toBe('confirmed');
      }, { timeout: 20_000, interval: 200 });
    });
  }, 120_000);

  test('a change and its event are stored in one transaction: when either cannot be written, neither is (orders and payments, checked in PostgreSQL)', async ({ shop }) => {
    const ordersPool = await shop.poolOf('orders');
    const paymentsPool = await shop.poolOf('payments');
    await migrate(ordersPool, lessonFile(SLUG, 'services/orders/migrations'));
    await migrate(paymentsPool, lessonFile(SLUG, 'services/payments/migrations'));
    const lines = [{ sku: 'tea', quantity: 1, unitPriceCents: 450 }];
    const count = async (pool: pg.Pool, sql: string, params: unknown[]) => (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, params)).rows[0]!.n;
    const eventsAbout = (pool: pg.Pool, type: string, field: 'userId' | 'orderId', id: string) =>
      count(pool, `outbox WHERE type = $1 AND envelope #>> ARRAY['data', $2] = $3`, [type, field, id]);
    // The service's own role owns its tables: it may add a constraint that refuses one row, as a full disk or a bug would.
    const refuse = (pool: pg.Pool, table: string, column: string, id: string) =>
      pool.query(`ALTER TABLE ${table} ADD CONSTRAINT ${pg.escapeIdentifier(`check_refuses_${randomUUID().slice(0, 8)}`)} CHECK (${column} IS DISTINCT FROM ${pg.escapeLiteral(id)})`);
    const outcomeOf = (work: Promise<unknown>) => work.then(() => 'stored', (error: Error) => `failed (${error.message})`);

    // The orders service: placeOrder (the order and OrderPlaced).
    const userId = randomUUID();
    await placeOrder(ordersPool, userId, lines, 'check-request');
    expect({ orders: await count(ordersPool, 'orders WHERE user_id = $1', [userId]), events: await eventsAbout(ordersPool, 'OrderPlaced', 'userId', userId) }, `placeOrder should store the order and one OrderPlaced in the outbox (${at('services/orders/orders.ts')})`).toEqual({ orders: 1, events: 1 });

    const eventRefused = randomUUID();
    await refuse(ordersPool, 'outbox', `envelope #>> '{data,userId}'`, eventRefused);
    const placedWithoutEvent = await outcomeOf(placeOrder(ordersPool, eventRefused, lines, undefined));
    expect(await count(ordersPool, 'orders WHERE user_id = $1', [eventRefused]), `the outbox refused the order's OrderPlaced (placeOrder ${placedWithoutEvent}), yet the order is stored: nobody will ever hear of it. Insert the order and append its event on ONE client inside ONE inTransaction (${at('services/orders/orders.ts')})`).toBe(0);
    expect(placedWithoutEvent, `placeOrder should fail when its event cannot be stored, so that the client hears of it (${at('services/orders/orders.ts')})`).toMatch(/^failed/);

    const orderRefused = randomUUID();
    await refuse(ordersPool, 'orders', 'user_id::text', orderRefused);
    const eventWithoutOrder = await outcomeOf(placeOrder(ordersPool, orderRefused, lines, undefined));
    expect(await eventsAbout(ordersPool, 'OrderPlaced', 'userId', orderRefused), `the orders table refused the order (placeOrder ${eventWithoutOrder}), yet its OrderPlaced is in the outbox: payments will charge for an order that does not exist. One transaction for both (${at('services/orders/orders.ts')})`).toBe(0);

    // The payments service: capturePayment (the payment and PaymentCaptured).
    const orderPlaced = (orderId: string) => newEvent('OrderPlaced', { orderId, userId, totalCents: 450, lines }, 'check-request');
    const paid = randomUUID();
    await capturePayment(paymentsPool, orderPlaced(paid));
    expect({ payments: await count(paymentsPool, 'payments WHERE order_id = $1', [paid]), events: await eventsAbout(paymentsPool, 'PaymentCaptured', 'orderId', paid) }, `capturePayment should store the payment and one PaymentCaptured in the outbox (${at('services/payments/payments.ts')})`).toEqual({ payments: 1, events: 1 });

    const paymentEventRefused = randomUUID();
    await refuse(paymentsPool, 'outbox', `envelope #>> '{data,orderId}'`, paymentEventRefused);
    const capturedWithoutEvent = await outcomeOf(capturePayment(paymentsPool, orderPlaced(paymentEventRefused)));
    expect(await count(paymentsPool, 'payments WHERE order_id = $1', [paymentEventRefused]), `the outbox refused PaymentCaptured (capturePayment ${capturedWithoutEvent}), yet the payment is stored: the order is charged and never confirmed, and the redelivered OrderPlaced finds the payment and announces nothing. One transaction for both (${at('services/payments/payments.ts')})`).toBe(0);
    expect(capturedWithoutEvent, `capturePayment should fail when its event cannot be stored, so that the OrderPlaced is delivered again (${at('services/payments/payments.ts')})`).toMatch(/^failed/);

    const paymentRefused = randomUUID();
    await refuse(paymentsPool, 'payments', 'order_id::text', paymentRefused);
    const eventWithoutPayment = await outcomeOf(capturePayment(paymentsPool, orderPlaced(paymentRefused)));
    expect(await eventsAbout(paymentsPool, 'PaymentCaptured', 'orderId', paymentRefused), `the payments table refused the payment (capturePayment ${eventWithoutPayment}), yet PaymentCaptured is in the outbox: the order will be confirmed unpaid. One transaction for both (${at('services/payments/payments.ts')})`).toBe(0);

    // The orders service again: confirmOrder (the status and OrderConfirmed).
    const storedOrder = async () => {
      const id = randomUUID();
      await ordersPool.query(`INSERT INTO orders (id, user_id, status, lines, total_cents) VALUES ($1, $2, 'placed', $3, 450)`, [id, userId, JSON.stringify(lines)]);
      return id;
    };
    const paymentCaptured = (orderId: string) => newEvent('PaymentCaptured', { paymentId: randomUUID(), orderId, userId, amountCents: 450 }, 'check-request');
    const statusOf = async (orderId: string) => (await ordersPool.query<{ status: string }>('SELECT status FROM orders WHERE id = $1', [orderId])).rows[0]?.status;
    const confirmed = await storedOrder();
    await confirmOrder(ordersPool, paymentCaptured(confirmed));
    expect({ status: await statusOf(confirmed), events: await eventsAbout(ordersPool, 'OrderConfirmed', 'orderId', confirmed) }, `confirmOrder should confirm the order and write one OrderConfirmed to the outbox (${at('services/orders/orders.ts')})`).toEqual({ status: 'confirmed', events: 1 });

    const confirmationRefused = await storedOrder();
    await refuse(ordersPool, 'outbox', `envelope #>> '{data,orderId}'`, confirmationRefused);
    const confirmedWithoutEvent = await outcomeOf(confirmOrder(ordersPool, paymentCaptured(confirmationRefused)));
    expect(await statusOf(confirmationRefused), `the outbox refused OrderConfirmed (confirmOrder ${confirmedWithoutEvent}), yet the order is confirmed: no email will ever go out, and the redelivered PaymentCaptured finds it confirmed and announces nothing. One transaction for both (${at('services/orders/orders.ts')})`).toBe('placed');
  });

  test('a doubled OrderPlaced captures one payment, and a doubled PaymentCaptured confirms the order once', async ({ shop }) => {
    const paymentsPool = await shop.poolOf('payments');
    const ordersPool = await shop.poolOf('orders');
    await migrate(paymentsPool, lessonFile(SLUG, 'services/payments/migrations'));
    await migrate(ordersPool, lessonFile(SLUG, 'services/orders/migrations'));
    const userId = randomUUID();

    const order = await placeOrder(ordersPool, userId, [{ sku: 'tea', quantity: 3, unitPriceCents: 450 }], 'check-request');
    expect(order, `placeOrder should return the placed order (${at('services/orders/orders.ts')})`).toMatchObject({ userId, status: 'placed', totalCents: 1350 });
    const outbox = async (pool: pg.Pool, type: string) =>
      (await pool.query<{ envelope: AnyEnvelope }>('SELECT envelope FROM outbox WHERE type = $1 ORDER BY position', [type])).rows.map((row) => row.envelope);
    const placedEvents = await outbox(ordersPool, 'OrderPlaced');
    expect(placedEvents, `placing the order should write one OrderPlaced to the orders outbox, in the same transaction (${at('services/orders/orders.ts')})`).toMatchObject([
      { type: 'OrderPlaced', requestId: 'check-request', data: { orderId: order.id, userId, totalCents: 1350 } },
    ]);
    const orderPlaced = placedEvents[0] as AnyEnvelope & { type: 'OrderPlaced' };

    const captured = await Promise.all([capturePayment(paymentsPool, orderPlaced), capturePayment(paymentsPool, orderPlaced)]);
    captured.push(await capturePayment(paymentsPool, orderPlaced));
    expect((await paymentsPool.query('SELECT order_id, amount_cents FROM payments')).rows, `three deliveries of one OrderPlaced (two at once) should capture one payment (${at('services/payments/payments.ts')})`).toEqual([
      { order_id: order.id, amount_cents: 1350 },
    ]);
    const paymentEvents = await outbox(paymentsPool, 'PaymentCaptured');
    expect(paymentEvents.length, `…and announce it once: one PaymentCaptured in the payments outbox, however often OrderPlaced came (${at('services/payments/payments.ts')})`).toBe(1);
    expect(captured.filter(Boolean), `capturePayment should return true for the one delivery that captured, false for the others (${at('services/payments/payments.ts')})`).toHaveLength(1);
    const paymentCaptured = paymentEvents[0] as AnyEnvelope & { type: 'PaymentCaptured' };
    expect(paymentCaptured, `PaymentCaptured carries the order, the amount and the request id (${at('services/payments/payments.ts')})`).toMatchObject({ requestId: 'check-request', data: { orderId: order.id, userId, amountCents: 1350 } });

    const confirmed = await Promise.all([confirmOrder(ordersPool, paymentCaptured), confirmOrder(ordersPool, paymentCaptured)]);
    confirmed.push(await confirmOrder(ordersPool, paymentCaptured));
    expect((await ordersPool.query('SELECT status FROM orders WHERE id = $1', [order.id])).rows[0], `the order should be confirmed (${at('services/orders/orders.ts')})`).toEqual({ status: 'confirmed' });
    expect((await outbox(ordersPool, 'OrderConfirmed')).length, `three deliveries of one PaymentCaptured (two at once) should announce OrderConfirmed once, or the customer gets two emails (${at('services/orders/orders.ts')})`).toBe(1);
    expect(confirmed.filter(Boolean), `confirmOrder should return true once, false for the repeats (${at('services/orders/orders.ts')})`).toHaveLength(1);
  });
});
