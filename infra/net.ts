import { connect, createServer } from 'node:net';
import { ServiceError } from './errors.ts';

/** Resolves true when something accepts a TCP connection at host:port within the timeout. */
export function isPortOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const finish = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/** The first host:port of a service URL (or of a Kafka broker list). */
export function firstHostPort(url: string, defaultPort: number): { host: string; port: number } {
  const first = url.split(',')[0]!.trim();
  const withScheme = first.includes('://') ? first : `tcp://${first}`;
  const parsed = new URL(withScheme);
  return { host: parsed.hostname, port: parsed.port ? Number(parsed.port) : defaultPort };
}

/** A TCP port that is free on 127.0.0.1 right now (the system picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Fails when a port a service is about to bind on 127.0.0.1 is already taken by another program. */
export async function assertPortsFree(ports: readonly number[], what: string): Promise<void> {
  for (const port of ports) {
    if (await isPortOpen('127.0.0.1', port, 300)) {
      throw new ServiceError(`cannot start ${what}: 127.0.0.1:${port} is already in use by another program`);
    }
  }
}
