// The Limiter's failure pipeline against a real redis-server that the tests start, SIGKILL, SIGSTOP
// and restart: deadline, fail open / closed, fallback store, circuit breaker, events, health(),
// boot with the store absent, and configuration errors.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FloodgateError } from '../src/errors.js';
import type { DegradedEvent, LimitEvent, RecoveredEvent, StoreErrorEvent } from '../src/index.js';
import { Limiter, type LimiterOptions } from '../src/limiter.js';
import { MemoryStore } from '../src/stores/memory.js';
import { createStore } from '../src/uri.js';
import { RedisProcess, sleep, waitFor } from './chaos/redis-process.js';
import { cli } from './support/redis-servers.js';

let unhandled = 0;
const countUnhandled = () => {
  unhandled++;
};
const limiters: Limiter[] = [];
const servers: RedisProcess[] = [];
let serial = 0;

function limiter(options: Partial<LimiterOptions> & Pick<LimiterOptions, 'store'>): Limiter {
  serial++;
  const made = new Limiter({
    limit: '5/min',
    name: `res${serial}`,
    prefix: `res-${process.pid}:`,
    ...options,
  });
  limiters.push(made);
  return made;
}

async function redis(): Promise<RedisProcess> {
  const server = await RedisProcess.start();
  servers.push(server);
  return server;
}

beforeAll(() => {
  process.on('unhandledRejection', countUnhandled);
});

afterEach(async () => {
  for (const l of limiters.splice(0)) await l.close();
  for (const s of servers.splice(0)) await s.stop();
});

afterAll(() => {
  process.off('unhandledRejection', countUnhandled);
});

describe('deadline (timeoutMs)', () => {
  it('a frozen Redis costs one deadline per call, and late answers are dropped without a trace', async () => {
    const server = await redis();
    const l = limiter({ store: server.url, timeoutMs: 100, breaker: false });
    expect(await l.consume('k')).toMatchObject({ allowed: true, remaining: 4, degraded: false });

    server.freeze();
    const started = performance.now();
    const decisions = await Promise.all(Array.from({ length: 20 }, () => l.consume('k')));
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(95);
    expect(elapsed).toBeLessThan(1000); // generous: proves "bounded", not a benchmark
    for (const d of decisions) {
      expect(d).toMatchObject({ allowed: false, degraded: 'closed', remaining: 0 });
      expect(d.retryAfterMs).toBeGreaterThanOrEqual(1000);
    }
    expect(l.health().counts).toMatchObject({ timeouts: 20, closed: 20 });

    // Thaw before the client's own command timeout: Redis now runs the 20 checks it was sent.
    await sleep(200);
    server.thaw();
    await waitFor(async () => (await l.consume('other')).degraded === false, 2000);
    // The late checks counted in Redis (a timed-out call is ambiguous), but no caller saw them.
    const after = await l.peek('k');
    expect(after).toMatchObject({ remaining: 0, degraded: false });
    expect(unhandled).toBe(0);
  });
});

describe('failure policy', () => {
  it('skipOnError: a dead store allows, says degraded "open" and invents no counts', async () => {
    const server = await redis();
    const l = limiter({ store: server.url, skipOnError: true });
    await l.consume('k');
    await server.kill();
    const d = await l.consume('k');
    expect(d).toMatchObject({ allowed: true, degraded: 'open', remaining: 5, limit: 5, retryAfterMs: 0 });
    expect(await l.peek('k')).toMatchObject({ allowed: true, degraded: 'open' });
  });

  it('fail closed: denied with degraded "closed", told to retry after the breaker cool-down (>= 1 s)', async () => {
    const server = await redis();
    const l = limiter({ store: server.url, breaker: { threshold: 2, cooldownMs: 3000 } });
    await l.consume('k');
    await server.kill();
    const first = await l.consume('k');
    expect(first).toMatchObject({ allowed: false, degraded: 'closed', retryAfterMs: 1000 });
    await l.consume('k'); // second failure opens the breaker
    expect(l.health().breaker).toMatchObject({ state: 'open' });
    const skipped = await l.consume('k');
    expect(skipped).toMatchObject({ allowed: false, degraded: 'closed' });
    expect(skipped.retryAfterMs).toBeGreaterThan(2500);
    expect(skipped.retryAfterMs).toBeLessThanOrEqual(3000);
  });

  it('fallback store: decides while the primary is dead and still limits', async () => {
    const server = await redis();
    const l = limiter({ limit: '4/min', store: server.url, fallback: 'memory://' });
    await server.kill();
    const decisions = [];
    for (let i = 0; i < 5; i++) decisions.push(await l.consume('k'));
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, true, false]);
    expect(decisions.every((d) => d.degraded === 'fallback')).toBe(true);
    expect(decisions[3].remaining).toBe(0);
    expect(decisions[4].retryAfterMs).toBeGreaterThan(0);
    // The other key has its own count in the fallback too.
    expect(await l.consume('k2')).toMatchObject({ allowed: true, remaining: 3, degraded: 'fallback' });
    expect(await l.peek('k')).toMatchObject({ remaining: 0, degraded: 'fallback' });
  });

  it('fallbackShare scales every limit to this process share while the fallback decides', async () => {
    const server = await redis();
    const l = limiter({
      limit: ['10/min', '4/s'],
      name: undefined,
      store: server.url,
      fallback: new MemoryStore(),
      fallbackShare: 0.5,
    });
    await server.kill();
    const decisions = [];
    for (let i = 0; i < 3; i++) decisions.push(await l.consume('k'));
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, false]);
    expect(decisions[0].policies.map((p) => p.limit)).toEqual([5, 2]);
    expect(decisions[2]).toMatchObject({ degraded: 'fallback', policy: '4-in-1s', limit: 2 });
  });

  it('the fallback failing too falls through to skipOnError', async () => {
    const [a, b] = [await redis(), await redis()];
    const l = limiter({ store: a.url, fallback: b.url, skipOnError: true, timeoutMs: 100 });
    await a.kill();
    expect(await l.consume('k')).toMatchObject({ degraded: 'fallback', allowed: true, remaining: 4 });
    b.freeze();
    expect(await l.consume('k')).toMatchObject({ degraded: 'open', allowed: true });
    b.thaw();
  });
});

describe('circuit breaker', () => {
  it('a dead Redis costs no store call while open; one probe per cool-down; closes by itself on restart', async () => {
    const server = await redis();
    const errors: StoreErrorEvent[] = [];
    const degraded: DegradedEvent[] = [];
    const recovered: RecoveredEvent[] = [];
    const l = limiter({
      store: server.url,
      skipOnError: true,
      breaker: { threshold: 3, windowMs: 1000, cooldownMs: 300 },
      onStoreError: (e) => errors.push(e),
      onDegraded: (e) => degraded.push(e),
      onRecovered: (e) => recovered.push(e),
    });
    expect((await l.consume('k')).degraded).toBe(false);
    await server.kill();
    for (let i = 0; i < 3; i++) await l.consume('k');
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatchObject({ store: 'primary', kind: 'redis', operation: 'consume', key: 'k' });
    expect(l.health()).toMatchObject({
      status: 'degraded',
      degraded: 'open',
      breaker: { state: 'open', opens: 1 },
    });
    expect(degraded).toEqual([expect.objectContaining({ mode: 'open' })]);

    const started = performance.now();
    let calls = 0;
    while (performance.now() - started < 1000) {
      const d = await l.consume('k');
      expect(d).toMatchObject({ allowed: true, degraded: 'open' });
      calls++;
      // Let I/O run now and then, as a server does between requests (the probes need it).
      if (calls % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const elapsed = performance.now() - started;
    // Thousands of calls in one second, but the store was only asked by the probes: at most one per
    // cool-down, sent in the background (operation 'probe'), never by a request.
    expect(calls).toBeGreaterThan(1000);
    expect(errors.slice(3).every((e) => e.operation === 'probe')).toBe(true);
    expect(errors.length - 3).toBeLessThanOrEqual(Math.ceil(elapsed / 300) + 1);
    expect(errors.length - 3).toBeGreaterThanOrEqual(2);
    expect(degraded).toHaveLength(1);

    await server.restart();
    const took = await waitFor(async () => (await l.consume('k')).degraded === false, 2000);
    expect(took).toBeLessThanOrEqual(2000);
    expect(l.health()).toMatchObject({ status: 'ok', degraded: false, breaker: { state: 'closed' } });
    expect(recovered).toHaveLength(1);
    expect(recovered[0].downtimeMs).toBeGreaterThan(1000);
    expect(recovered[0].degradedDecisions).toBeGreaterThan(1000);
    expect(unhandled).toBe(0);
  });

  it('a hung store opens the breaker on its first timeout, and calls still waiting are answered at once', async () => {
    const server = await redis();
    // The client's own command timeout is set long so that the Limiter's deadline is what fires.
    const l = limiter({ store: `${server.url}?timeoutMs=5000`, timeoutMs: 1000, breaker: { threshold: 3 } });
    await l.consume('k');
    server.freeze();
    const started = performance.now();
    const first = Array.from({ length: 3 }, () => l.consume('k'));
    await sleep(500);
    const later = Array.from({ length: 10 }, () =>
      l.consume('k').then((d) => ({ d, at: performance.now() - started })),
    );
    await Promise.all(first);
    const answered = await Promise.all(later);
    // The first call times out at 1000 ms; Redis has answered nothing since it was sent, so it is
    // hung and the breaker opens on that one timeout. The two other early calls and the ten sent at
    // 500 ms (which would have waited until 1500 ms) are released at once.
    for (const { d, at } of answered) {
      expect(d).toMatchObject({ allowed: false, degraded: 'closed' });
      expect(at).toBeGreaterThanOrEqual(950);
      expect(at).toBeLessThan(1400);
    }
    expect(l.health().counts).toMatchObject({ storeErrors: 1, timeouts: 1, closed: 13 });
    expect(l.health().breaker).toMatchObject({ state: 'open', opens: 1 });
    server.thaw();
  });

  it('breaker: false calls the store every time', async () => {
    const server = await redis();
    const errors: StoreErrorEvent[] = [];
    const l = limiter({ store: server.url, breaker: false, onStoreError: (e) => errors.push(e) });
    await server.kill();
    for (let i = 0; i < 20; i++) await l.consume('k');
    expect(errors).toHaveLength(20);
    expect(l.health().breaker).toBe('off');
  });
});

describe('events', () => {
  it('onLimit reports denials by a limit with the key and the decision', async () => {
    const server = await redis();
    const limits: LimitEvent[] = [];
    const l = limiter({ limit: '2/min', store: server.url, onLimit: (e) => limits.push(e) });
    for (let i = 0; i < 3; i++) await l.consume('user:1');
    expect(limits).toHaveLength(1);
    expect(limits[0]).toMatchObject({
      key: 'user:1',
      decision: { allowed: false, remaining: 0, degraded: false },
    });
    // The memory store's fast path reports too.
    const memory = limiter({ limit: '1/min', store: new MemoryStore(), onLimit: (e) => limits.push(e) });
    await memory.consume('m');
    await memory.consume('m');
    expect(limits.map((e) => e.key)).toEqual(['user:1', 'm']);
  });

  it('hooks that throw or reject never reach the request; each is reported once as a warning', async () => {
    const server = await redis();
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => {
      if (w.code === 'FLOODGATE_HOOK_FAILED') warnings.push(w.message);
    };
    process.on('warning', onWarning);
    try {
      const l = limiter({
        limit: '1/min',
        store: server.url,
        fallback: 'memory://',
        onStoreError: () => {
          throw new Error('logger down');
        },
        onDegraded: async () => {
          throw new Error('metrics down');
        },
        onRecovered: () => {
          throw new Error('boom');
        },
        onLimit: () => {
          throw new Error('limit hook');
        },
      });
      await l.consume('k');
      expect(await l.consume('k')).toMatchObject({ allowed: false, degraded: false });
      await server.kill();
      const d = await l.consume('k2');
      expect(d).toMatchObject({ allowed: true, degraded: 'fallback' });
      expect(await l.consume('k2')).toMatchObject({ allowed: false, degraded: 'fallback' });
      await sleep(20); // warnings are emitted on the next tick
      expect(warnings).toHaveLength(3);
      expect(warnings.join('\n')).toMatch(/onStoreError hook threw \(logger down\)/);
      expect(warnings.join('\n')).toMatch(/onDegraded hook threw \(metrics down\)/);
      expect(warnings.join('\n')).toMatch(/onLimit hook threw \(limit hook\)/);
      expect(unhandled).toBe(0);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('boot with the store absent', () => {
  it('serves per the policy from the first request, and uses Redis within 2 s of it starting', async () => {
    const server = await RedisProcess.reserve();
    servers.push(server);
    const l = limiter({ store: server.url, skipOnError: true });
    const started = performance.now();
    const first = await l.consume('k');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(first).toMatchObject({ allowed: true, degraded: 'open' });
    // Keep serving while nothing listens.
    for (let i = 0; i < 50; i++) expect((await l.consume('k')).degraded).toBe('open');

    await server.restart();
    const took = await waitFor(async () => (await l.consume('k')).degraded === false, 2000);
    expect(took).toBeLessThanOrEqual(2000);
    expect(await l.peek('k')).toMatchObject({ degraded: false, remaining: 4 });
  });
});

describe('configuration errors at construction', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['negative timeout', { timeoutMs: -1 }, /timeoutMs -1 must be a whole number of ms from 1 to 60000/],
    ['zero timeout', { timeoutMs: 0 }, /timeoutMs 0/],
    ['fractional timeout', { timeoutMs: 2.5 }, /timeoutMs 2.5/],
    ['breaker threshold 0', { breaker: { threshold: 0 } }, /breaker\.threshold 0/],
    ['breaker negative cool-down', { breaker: { cooldownMs: -5 } }, /breaker\.cooldownMs -5/],
    ['breaker typo', { breaker: { treshold: 3 } }, /did you mean "threshold"/],
    [
      'fallback equal to the primary',
      { store: 'redis://127.0.0.1:6379', fallback: 'redis://127.0.0.1:6379' },
      /same backend as the primary/,
    ],
    [
      'fallback equal to the primary, spelled differently',
      { store: 'redis://localhost:6379/0?prefix=a:', fallback: 'redis://127.0.0.1:6379' },
      /same backend as the primary/,
    ],
    [
      'fallback on the same Redis server, another database',
      { store: 'redis://:secret@127.0.0.1:6379/0', fallback: 'redis://localhost/3' },
      /same backend as the primary/,
    ],
    [
      'fallback listed in a multi-store primary',
      { store: ['redis://127.0.0.1:7001', 'redis://127.0.0.1:7002'], fallback: 'redis://127.0.0.1:7002' },
      /same backend as the primary/,
    ],
    [
      'fallbackShare 0',
      { fallback: 'memory://', fallbackShare: 0 },
      /fallbackShare 0 must be a number above 0/,
    ],
    ['fallbackShare above 1', { fallback: 'memory://', fallbackShare: 2 }, /fallbackShare 2/],
    ['fallbackShare without fallback', { fallbackShare: 0.5 }, /fallbackShare only applies with a fallback/],
    ['hook not a function', { onStoreError: 'console.log' }, /onStoreError "console.log" must be a function/],
    ['hook name typo', { onStoreErrors: () => {} }, /did you mean "onStoreError"/],
    ['skipOnError not a boolean', { skipOnError: 'yes' }, /skipOnError "yes" must be true or false/],
  ];
  it.each(cases)('%s', (_what, options, message) => {
    let error: unknown;
    try {
      new Limiter({ limit: '1/s', ...options } as LimiterOptions);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FloodgateError);
    expect((error as FloodgateError).code).toMatch(/^FLOODGATE_(INVALID|UNKNOWN)_OPTION$/);
    expect((error as Error).message).toMatch(message);
  });

  it('a bad limit after a Redis store was opened closes that connection again', async () => {
    const server = await redis();
    const others = async () =>
      (await cli(server.port, 'client', 'list')).split('\n').filter((line) => !line.includes('cmd=client'))
        .length;
    expect(
      () =>
        new Limiter({
          limit: '100/mn',
          store: server.url,
          fallback: 'memory://',
        }),
    ).toThrow(/FLOODGATE_INVALID_RATE/);
    // The store connected (or was connecting) before the limit was read; it is closed again.
    await waitFor(async () => (await others()) === 0, 2000);
    expect(await others()).toBe(0);
  });

  it('the same Store object as primary and fallback', () => {
    const store = new MemoryStore();
    expect(() => new Limiter({ limit: '1/s', store, fallback: store })).toThrow(
      /same backend as the primary/,
    );
  });

  it('store lists: empty, duplicates, bad strategy, options on a single URI', () => {
    expect(() => createStore([])).toThrow(/FLOODGATE_INVALID_URI: a store list needs at least one URI/);
    expect(() => createStore(['redis://127.0.0.1:7001', 'redis://127.0.0.1:7001'])).toThrow(/listed twice/);
    expect(() => createStore(['memory://'], { strategy: 'random' as 'round-robin' })).toThrow(
      /strategy "random" must be "first-healthy" or "round-robin"/,
    );
    expect(() => createStore(['memory://'], { healthCheckIntervalMs: 0 })).toThrow(
      /healthCheckIntervalMs 0 must be a whole number from 50 to 600000/,
    );
    expect(() => createStore(['memory://'], { hysteresis: 10 } as object)).toThrow(
      /did you mean "hysteresisMs"/,
    );
    expect(() => (createStore as (u: string, o: object) => unknown)('memory://', {})).toThrow(
      /createStore options are for a list of URIs/,
    );
  });
});
