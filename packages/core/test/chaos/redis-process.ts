/**
 * Test harness for the resilience and chaos tests: one redis-server (from the shared harness in
 * test/support/redis-servers.ts) that can be killed, frozen, thawed and restarted on the same port,
 * as a Redis that crashes, hangs and comes back would. Only ever signals the pid it started.
 */
import { freePort, type RedisServer, startRedis } from '../support/redis-servers.js';

export class RedisProcess {
  private server: RedisServer | undefined;
  private frozen = false;

  private constructor(readonly port: number) {}

  /** Start a redis-server on a free port and wait until it answers PING. */
  static async start(): Promise<RedisProcess> {
    const redis = new RedisProcess(await freePort());
    await redis.restart();
    return redis;
  }

  /** A RedisProcess for a port where nothing runs yet (boot-with-the-store-absent tests). */
  static async reserve(): Promise<RedisProcess> {
    return new RedisProcess(await freePort());
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.server?.pid;
  }

  /** (Re)start the server on the same port (with no data); resolves once it answers PING. */
  async restart(): Promise<void> {
    if (this.server) throw new Error(`redis-server on ${this.port} is already running`);
    this.server = await startRedis({ port: this.port });
  }

  /** SIGKILL: the server is gone at once, its connections reset. */
  async kill(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.frozen = false;
    await server?.stop();
  }

  /** SIGSTOP: the server keeps its connections but answers nothing (a hang, not an error). */
  freeze(): void {
    if (!this.server || this.frozen) return;
    this.frozen = true;
    this.server.signal('SIGSTOP');
  }

  /** SIGCONT: a frozen server resumes and answers what it was sent meanwhile. */
  thaw(): void {
    if (!this.server || !this.frozen) return;
    this.frozen = false;
    this.server.signal('SIGCONT');
  }

  async stop(): Promise<void> {
    await this.kill();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `condition` every 10 ms until it holds; resolves with the ms it took, or rejects after `limitMs`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, limitMs: number): Promise<number> {
  const started = performance.now();
  while (!(await condition())) {
    if (performance.now() - started > limitMs) throw new Error(`condition not met within ${limitMs} ms`);
    await sleep(10);
  }
  return performance.now() - started;
}
