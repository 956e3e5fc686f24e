/**
 * examples/redis-fallback run as it is shipped, against a redis-server this test starts: it limits
 * through Redis; with Redis killed it still limits (the memory fallback) and its health endpoint
 * says so; with Redis back it goes back to Redis by itself.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type Reply, request, sequence } from '../../core/test/support/adapters.js';
import { type RedisServer, startRedis } from '../../core/test/support/redis-servers.js';

const exampleDir = fileURLToPath(new URL('../../../examples/redis-fallback/', import.meta.url));
const stops: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
});

async function startApp(redisPort: number): Promise<{ port: number; output: () => string }> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'app.ts'], {
    cwd: exampleDir,
    env: { ...process.env, PORT: '0', REDIS_URL: `redis://127.0.0.1:${redisPort}` },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  stops.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the example exited (${code}) before listening`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
  });
  return { port, output: () => out };
}

const body = (reply: Reply) => JSON.parse(reply.body) as Record<string, unknown>;

describe('examples/redis-fallback', () => {
  it('limits through Redis, keeps limiting on the fallback while Redis is dead, and returns to Redis', async () => {
    let redis: RedisServer = await startRedis();
    stops.push(() => redis.stop());
    const app = await startApp(redis.port);
    const get = () => request({ port: app.port }, '/');

    const onRedis = await sequence(7, get);
    expect(onRedis.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expect(onRedis.slice(0, 5).map((r) => body(r).degraded)).toEqual([false, false, false, false, false]);
    expect(body(await request({ port: app.port }, '/health'))).toMatchObject({
      status: 'ok',
      store: 'redis',
    });

    redis.signal('SIGKILL');
    // The fallback counts from zero for this process: 5 more, then 429 again, never a 5xx.
    const started = Date.now();
    const onFallback = await sequence(7, get);
    expect(onFallback.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expect(onFallback.slice(0, 5).map((r) => body(r).degraded)).toEqual(Array(5).fill('fallback'));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(body(await request({ port: app.port }, '/health'))).toMatchObject({
      status: 'degraded',
      degraded: 'fallback',
      fallback: 'memory',
    });
    expect(app.output()).toContain('limits degraded (fallback)');

    // Redis back on its port (empty: it kept nothing on disk). The breaker tries it again when a
    // request comes after its cool-down (the fallback still answers that one), then uses it.
    redis = await startRedis({ port: redis.port });
    const deadline = Date.now() + 10_000;
    let back = await get();
    while (!(back.status === 200 && body(back).degraded === false) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      back = await get();
    }
    expect(body(back)).toEqual({ remaining: 4, degraded: false });
    expect(body(await request({ port: app.port }, '/health'))).toMatchObject({
      status: 'ok',
      degraded: false,
    });
    expect(app.output()).toContain('limits back on Redis after');
  }, 60_000);
});
