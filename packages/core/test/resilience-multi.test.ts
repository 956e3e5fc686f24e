// MultiStore against real redis-server processes: failover, hysteresis on failback, round-robin,
// background health checks, and the Limiter taking a list of URIs.
import { afterEach, describe, expect, it } from 'vitest';
import { Limiter } from '../src/limiter.js';
import { parsePolicies } from '../src/rate.js';
import { MultiStore } from '../src/stores/multi.js';
import { RedisStore } from '../src/stores/redis/index.js';
import type { Store } from '../src/types.js';
import { createStore } from '../src/uri.js';
import { RedisProcess, sleep, waitFor } from './chaos/redis-process.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function redis(): Promise<RedisProcess> {
  const server = await RedisProcess.start();
  cleanup.push(() => server.stop());
  return server;
}

function track<T extends { close(): Promise<void> }>(closable: T): T {
  cleanup.push(() => closable.close());
  return closable;
}

const policies = parsePolicies('100/min', { prefix: `multi-${process.pid}:` });

async function remaining(store: Store, key: string): Promise<number> {
  return (await store.peek(key, policies))[0].remaining;
}

describe('MultiStore first-healthy', () => {
  const HYSTERESIS_MS = 2500;

  it('fails over at once when the active member dies, and fails back only after the hysteresis', async () => {
    const [a, b] = [await redis(), await redis()];
    const direct = [track(new RedisStore({ url: a.url })), track(new RedisStore({ url: b.url }))];
    const multi = track(
      createStore([a.url, b.url], { healthCheckIntervalMs: 50, hysteresisMs: HYSTERESIS_MS, timeoutMs: 250 }),
    );
    // Both connections up before the clock starts (a first connect can take longer than a deadline).
    await waitFor(async () => (await direct[0].health()).ok && (await direct[1].health()).ok, 2000);
    await sleep(100);
    for (let i = 0; i < 3; i++) await multi.consume('k', policies, 1);
    expect(await remaining(direct[0], 'k')).toBe(97);
    expect(await remaining(direct[1], 'k')).toBe(100); // each key counted by one backend at a time

    await a.kill();
    const killedAt = performance.now();
    // "At once": well before a hysteresis period (the wait leaves room for a loaded machine).
    await waitFor(() => multi.status().active === 1, HYSTERESIS_MS - 500);
    expect(multi.status()).toMatchObject({
      active: 1,
      switches: 1,
      members: [
        { kind: 'redis', up: false },
        { kind: 'redis', up: true },
      ],
    });
    expect(multi.status().members[0].failures).toBeGreaterThanOrEqual(2);
    await multi.consume('k', policies, 1);
    expect(await remaining(direct[1], 'k')).toBe(99);

    // Taken before the restart: the store may see the server healthy before restart() has seen it answer.
    const restartedAt = performance.now();
    await a.restart();
    await sleep(500);
    expect(multi.status().active).toBe(1); // healthy for 500 ms: not yet trusted
    await waitFor(() => multi.status().active === 0, HYSTERESIS_MS + 2000);
    expect(performance.now() - restartedAt).toBeGreaterThanOrEqual(HYSTERESIS_MS);
    expect(multi.switchLog.map((s) => [s.from, s.to])).toEqual([
      [0, 1],
      [1, 0],
    ]);
    expect(multi.switchLog[1].at - multi.switchLog[0].at).toBeGreaterThanOrEqual(HYSTERESIS_MS);
    expect(performance.now() - killedAt).toBeLessThan(HYSTERESIS_MS + 5000);
    // A restarted Redis lost its data; the key starts over on it.
    await multi.consume('k', policies, 1);
    expect(await remaining(direct[0], 'k')).toBe(99);
    expect(await multi.health()).toMatchObject({ ok: true });
  });

  it('health checks find a dead member with no traffic at all', async () => {
    const [a, b] = [await redis(), await redis()];
    const multi = track(
      createStore([a.url, b.url], { healthCheckIntervalMs: 50, hysteresisMs: 500, timeoutMs: 100 }),
    );
    b.freeze();
    await waitFor(() => multi.status().members[1].up === false, 2000);
    expect(multi.status()).toMatchObject({ active: 0, switches: 0 }); // a standby going down moves nothing
    expect(multi.status().members[1].lastError).toMatch(/did not answer within 100 ms/);
    b.thaw();
    await waitFor(() => multi.status().members[1].up, 2000);
    expect(multi.status().switches).toBe(0);
  });

  it('in a total outage the first member to answer is used at once', async () => {
    const [a, b] = [await redis(), await redis()];
    const multi = track(
      createStore([a.url, b.url], { healthCheckIntervalMs: 50, hysteresisMs: 60_000, timeoutMs: 100 }),
    );
    await a.kill();
    await b.kill();
    await waitFor(() => multi.status().members.every((m) => !m.up), 2000);
    await expect(multi.consume('k', policies, 1)).rejects.toThrow();
    await b.restart();
    // A 60 s hysteresis would keep b out, but nothing better is up.
    await waitFor(() => multi.status().members[1].up, 3000);
    expect(multi.status().active).toBe(1);
    expect((await multi.consume('k', policies, 1))[0].remaining).toBe(99);
  });
});

describe('MultiStore round-robin', () => {
  it('rotates calls over the members that are up', async () => {
    const [a, b] = [await redis(), await redis()];
    const stores = [new RedisStore({ url: a.url }), new RedisStore({ url: b.url })];
    const multi = track(new MultiStore(stores, { strategy: 'round-robin', healthCheckIntervalMs: 50 }, true));
    for (let i = 0; i < 10; i++) await multi.consume('k', policies, 1);
    expect(await remaining(stores[0], 'k')).toBe(95);
    expect(await remaining(stores[1], 'k')).toBe(95);
    expect(multi.status().active).toBe(-1);

    b.freeze();
    await waitFor(() => !multi.status().members[1].up, 2000);
    for (let i = 0; i < 10; i++) await multi.consume('k', policies, 1);
    b.thaw();
    expect(await remaining(stores[0], 'k')).toBe(85);
    expect(await remaining(stores[1], 'k')).toBe(95);
  });
});

describe('Limiter over a list of stores', () => {
  it('store: [uri, uri] builds a first-healthy MultiStore and health() shows its members', async () => {
    const [a, b] = [await redis(), await redis()];
    const limiter = track(
      new Limiter({
        limit: '3/min',
        name: 'multi-limiter',
        prefix: `ml-${process.pid}:`,
        store: [a.url, b.url],
      }),
    );
    expect(limiter.store).toBeInstanceOf(MultiStore);
    await limiter.consume('k');
    expect(limiter.health()).toMatchObject({
      status: 'ok',
      store: 'multi',
      members: { strategy: 'first-healthy', active: 0, switches: 0 },
    });
    await a.kill();
    // Calls while the dead member is still active fail closed; once it is marked down, b decides.
    await waitFor(async () => (await limiter.consume('k')).degraded === false, 2000);
    expect(limiter.health().members).toMatchObject({ active: 1, switches: 1 });
  });

  it('MultiStore rejects a store listed twice and an empty list', () => {
    const store = new RedisStore({ url: 'redis://127.0.0.1:1' });
    cleanup.push(() => store.close());
    expect(() => new MultiStore([store, store])).toThrow(/same store twice/);
    expect(() => new MultiStore([])).toThrow(/list of 1 to 16 stores/);
  });
});
