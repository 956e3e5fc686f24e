/**
 * Test harness: real redis-server processes on free loopback ports, for the resilience and chaos
 * tests. Each process is ours: we know its pid, and only ever signal that pid (kill = SIGKILL,
 * freeze = SIGSTOP, thaw = SIGCONT). Every process still running when the test process exits is
 * killed, so a failed test leaves nothing behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createConnection, createServer } from 'node:net';

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** A port nothing listens on right now (the OS picks it; we release it at once). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

export class RedisProcess {
  private child: ChildProcess | undefined;
  private frozen = false;

  private constructor(readonly port: number) {}

  /** Start a redis-server on `port` (default: a free one) and wait until it accepts connections. */
  static async start(port?: number): Promise<RedisProcess> {
    const redis = new RedisProcess(port ?? (await freePort()));
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
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** (Re)start the server on the same port; resolves once it answers PING. */
  async restart(): Promise<void> {
    if (this.child) throw new Error(`redis-server on ${this.port} is already running`);
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
      ],
      { stdio: 'ignore' },
    );
    this.child = child;
    live.add(child);
    child.once('exit', () => {
      live.delete(child);
      if (this.child === child) this.child = undefined;
    });
    const deadline = Date.now() + 10_000;
    while (!(await answersPing(this.port))) {
      if (this.child !== child) throw new Error(`redis-server on ${this.port} exited while starting`);
      if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not start within 10 s`);
      await sleep(20);
    }
  }

  /** SIGKILL: the server is gone at once, connections reset. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = once(child, 'exit');
    if (this.frozen) child.kill('SIGCONT');
    this.frozen = false;
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGSTOP: the server holds its connections but answers nothing (a hang, not an error). */
  freeze(): void {
    if (!this.child || this.frozen) return;
    this.frozen = true;
    this.child.kill('SIGSTOP');
  }

  /** SIGCONT: a frozen server resumes and answers what it was sent meanwhile. */
  thaw(): void {
    if (!this.child || !this.frozen) return;
    this.frozen = false;
    this.child.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    await this.kill();
  }
}

/** Whether a redis-server on `port` answers PING within 500 ms (a raw socket: no client library). */
export function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
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
