/**
 * A TCP proxy on a free loopback port that forwards to a Redis and can hold everything it carries
 * for `delayMs`, both ways, as a congested or far-away network would: the server answers every
 * command, only late. Bytes keep their order whatever the delay does meanwhile (a chunk is never
 * released before the one ahead of it), so the Redis protocol stays intact.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from '../support/redis-servers.js';

export class LatencyProxy {
  /** How long each chunk is held, in ms; change it at any time. */
  delayMs = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<LatencyProxy> {
    const port = await freePort();
    let proxy: LatencyProxy | undefined;
    const server = createServer((client) => proxy?.carry(client, connect(targetPort, '127.0.0.1')));
    proxy = new LatencyProxy(server, port);
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  private carry(client: Socket, upstream: Socket): void {
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    this.forward(client, upstream);
    this.forward(upstream, client);
  }

  /** One queue per direction, released in order by one timer at a time. */
  private forward(from: Socket, to: Socket): void {
    const queue: { chunk: Buffer; releaseAt: number }[] = [];
    let timer: NodeJS.Timeout | undefined;
    const release = () => {
      timer = undefined;
      while (queue.length > 0 && queue[0].releaseAt <= Date.now()) {
        const { chunk } = queue.shift()!;
        if (!to.destroyed) to.write(chunk);
      }
      if (queue.length > 0) timer = setTimeout(release, queue[0].releaseAt - Date.now());
    };
    from.on('data', (chunk: Buffer) => {
      const last = queue.length > 0 ? queue[queue.length - 1].releaseAt : 0;
      queue.push({ chunk, releaseAt: Math.max(Date.now() + this.delayMs, last) });
      if (timer === undefined) release();
    });
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
