import net from 'node:net';

/**
 * A TCP relay between a client under test and a real server (a broker, a database), through which
 * a check controls the network between them: the bytes are real, only their timing and their fate
 * change. Every connection to `url` is a connection to the server behind it.
 *
 * - `pause()` holds the bytes of every connection in both directions (as a congested link would),
 *   and `resume()` delivers them, in order. A connection the server closes meanwhile is closed on
 *   the client's side too, and whatever was held for it is lost, as it would be in a crash.
 * - `cut()` makes every connection go silent for good: bytes are dropped in both directions and
 *   nothing is ever closed, which is what a client sees when the server's host loses power, a
 *   network partitions, or a NAT or load balancer forgets the flow. New connections go silent too,
 *   until `restore()`; the ones that went silent stay silent.
 * - `delay(ms)` forwards every chunk from clients after `ms` milliseconds (a slow link).
 */
export class TcpProxy {
  private readonly links = new Set<Link>();
  private mode: 'open' | 'paused' | 'cut' = 'open';
  private latencyMs = 0;
  private heldFromClients = 0;
  private sentFromClients = 0;
  private droppedFromClients = 0;

  private constructor(
    private readonly server: net.Server,
    private readonly target: { host: string; port: number },
    /** The proxy's own address, e.g. amqp://guest:guest@127.0.0.1:40123 for an AMQP target. */
    readonly url: string,
  ) {}

  /** Starts a proxy on a free local port in front of the server at `targetUrl` (any scheme). */
  static async start(targetUrl: string): Promise<TcpProxy> {
    const target = new URL(targetUrl);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address() as net.AddressInfo;
    const url = new URL(targetUrl);
    url.hostname = '127.0.0.1';
    url.port = String(address.port);
    const proxy = new TcpProxy(server, { host: target.hostname, port: Number(target.port) }, url.toString().replace(/\/$/, ''));
    server.on('connection', (client) => proxy.accept(client));
    return proxy;
  }

  /** Bytes clients have written that have reached the server so far. */
  get bytesForwarded(): number {
    return this.sentFromClients;
  }

  /** Bytes clients have written since `pause()` that are held, not yet delivered. */
  get bytesHeld(): number {
    return this.heldFromClients;
  }

  /** Bytes clients have written into silent connections, dropped. */
  get bytesDropped(): number {
    return this.droppedFromClients;
  }

  /** Connections open through the proxy now (silent ones included). */
  get connectionCount(): number {
    return this.links.size;
  }

  /** Silent connections that their client has not closed yet. */
  get silentConnectionCount(): number {
    return [...this.links].filter((link) => link.isSilent).length;
  }

  pause(): void {
    if (this.mode === 'open') this.mode = 'paused';
  }

  resume(): void {
    if (this.mode !== 'paused') return;
    this.mode = 'open';
    this.heldFromClients = 0;
    for (const link of this.links) link.flush();
  }

  cut(): void {
    this.mode = 'cut';
    for (const link of this.links) link.silence();
  }

  restore(): void {
    if (this.mode === 'cut') this.mode = 'open';
  }

  delay(ms: number): void {
    this.latencyMs = ms;
  }

  /** Closes every connection and the listening socket. */
  async close(): Promise<void> {
    for (const link of this.links) link.destroy();
    this.links.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    const link = new Link(client, this.target, {
      mode: () => this.mode,
      latencyMs: () => this.latencyMs,
      held: (bytes) => (this.heldFromClients += bytes),
      sent: (bytes) => (this.sentFromClients += bytes),
      dropped: (bytes) => (this.droppedFromClients += bytes),
      closed: () => this.links.delete(link),
    });
    this.links.add(link);
    if (this.mode === 'cut') link.silence();
  }
}

interface LinkHooks {
  mode(): 'open' | 'paused' | 'cut';
  latencyMs(): number;
  held(bytes: number): void;
  sent(bytes: number): void;
  dropped(bytes: number): void;
  closed(): void;
}

/** One client connection and its connection to the server. */
class Link {
  private readonly upstream: net.Socket;
  private silent = false;
  private connected = false;
  private readonly toServer: Buffer[] = [];
  private readonly toClient: Buffer[] = [];

  constructor(private readonly client: net.Socket, target: { host: string; port: number }, private readonly hooks: LinkHooks) {
    client.setNoDelay(true);
    this.upstream = net.connect(target.port, target.host);
    this.upstream.setNoDelay(true);
    this.upstream.on('connect', () => {
      this.connected = true;
      if (this.hooks.mode() === 'open') this.flush();
    });
    client.on('data', (chunk: Buffer) => this.fromClient(chunk));
    this.upstream.on('data', (chunk: Buffer) => this.fromServer(chunk));
    // A silent link never closes: that is the point of it.
    const closeBoth = () => {
      if (this.silent) return;
      this.destroy();
    };
    client.on('close', () => {
      this.upstream.destroy();
      this.hooks.closed();
    });
    this.upstream.on('close', closeBoth);
    client.on('error', () => {});
    this.upstream.on('error', () => {});
  }

  get isSilent(): boolean {
    return this.silent;
  }

  silence(): void {
    this.silent = true;
    this.toServer.length = 0;
    this.toClient.length = 0;
    // The server may close its side (it is gone): the client must not hear of it.
    this.upstream.removeAllListeners('close');
    this.upstream.on('close', () => {});
  }

  flush(): void {
    if (this.silent || !this.connected) return;
    for (const chunk of this.toServer.splice(0)) this.writeToServer(chunk);
    for (const chunk of this.toClient.splice(0)) this.client.write(chunk);
  }

  destroy(): void {
    this.client.destroy();
    this.upstream.destroy();
  }

  private fromClient(chunk: Buffer): void {
    if (this.silent) {
      this.hooks.dropped(chunk.length);
      return;
    }
    if (this.hooks.mode() !== 'open' || !this.connected) {
      if (this.hooks.mode() === 'paused') this.hooks.held(chunk.length);
      this.toServer.push(chunk);
      return;
    }
    this.writeToServer(chunk);
  }

  private fromServer(chunk: Buffer): void {
    if (this.silent) return;
    if (this.hooks.mode() !== 'open') {
      this.toClient.push(chunk);
      return;
    }
    this.client.write(chunk);
  }

  private writeToServer(chunk: Buffer): void {
    const latency = this.hooks.latencyMs();
    const write = () => {
      if (this.silent) return;
      this.hooks.sent(chunk.length);
      this.upstream.write(chunk);
    };
    if (latency > 0) setTimeout(write, latency);
    else write();
  }
}
