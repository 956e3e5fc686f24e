/**
 * examples/redis-fallback run as it is shipped, against a redis-server this test starts: it limits
 * through Redis; with Redis killed it still limits (the memory fallback) and its health endpoint
 * says so; with Redis back it goes back to Redis by itself.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { type Reply, request, sequence } from '../../core/test/support/adapters.js';
import { killExamples, startExample } from '../../core/test/support/example-apps.js';
import { type RedisServer, startRedis } from '../../core/test/support/redis-servers.js';

let redis: RedisServer | undefined;
afterAll(async () => {
  killExamples();
  await redis?.stop();
});

const body = (reply: Reply) => JSON.parse(reply.body) as Record<string, unknown>;

describe('examples/redis-fallback', () => {
  it('limits through Redis, keeps limiting on the fallback while Redis is dead, and returns to Redis', async () => {
    redis = await startRedis();
    const app = await startExample('redis-fallback', { REDIS_URL: `redis://127.0.0.1:${redis.port}` });
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
    await app.stop();
  }, 60_000);
});
