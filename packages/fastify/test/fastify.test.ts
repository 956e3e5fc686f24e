import type { OutgoingHttpHeaders } from 'node:http';
import {
  ALGORITHM_NAMES,
  type LimitEvent,
  MemoryStore,
  QUOTA_EXCEEDED_TYPE,
  type Store,
  type StoreErrorEvent,
} from '@floodgate/core';
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import {
  assertCleanHeaders,
  burst,
  expectExactRetryAfter,
  expectExactUnderBurst,
  expectFailuresUncounted,
  expectForwardedForIgnored,
  expectFuzzedKeysContained,
  expectIpv6GroupedBy56,
  expectLimitEvent,
  expectStoreDownEvents,
  failingStore,
  names,
  parseField,
  remaining,
  request,
  sequence,
  statuses,
  type Target,
} from '../../core/test/support/adapters.js';
import { fuzzKeys, keyFromHeader } from '../../core/test/support/fuzz-keys.js';
import floodgate, { type LimitHandler } from '../src/index.js';

const apps: FastifyInstance[] = [];
const name = names('f');

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

function make(options: FastifyServerOptions = {}): FastifyInstance {
  const app = Fastify(options);
  apps.push(app);
  return app;
}

async function serve(app: FastifyInstance): Promise<Target> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { port: address.port };
}

describe('plugin', () => {
  it('limits every route, with draft-11 headers, Retry-After and a problem body', async () => {
    const app = make();
    await app.register(floodgate, { limit: '3/min', name: 'three', algorithm: 'fixed-window' });
    app.get('/', async () => ({ ok: true }));
    app.get('/other', async () => ({ ok: true }));
    const target = await serve(app);
    const replies = [
      ...(await sequence(2, () => request(target, '/'))),
      ...(await sequence(2, () => request(target, '/other'))),
    ];
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 429]);
    for (const r of replies) {
      assertCleanHeaders(r.headers);
      expect(
        parseField(r.headers['ratelimit-policy']).map((i) => [i.name, i.params.get('q'), i.params.get('w')]),
      ).toEqual([['three', 3, 60]]);
    }
    expect(replies.map((r) => remaining(r)[0])).toEqual([2, 1, 0, 0]);
    const denied = replies[3];
    expect(Number(denied.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(denied.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(denied.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(denied.body)).toMatchObject({
      type: QUOTA_EXCEEDED_TYPE,
      status: 429,
      'violated-policies': ['three'],
    });
  });

  it("sets its headers on the reply's own list: a handler reads them there, and a hijacked reply can copy them", async () => {
    const app = make();
    await app.register(floodgate, { limit: '5/min', name: 'reply-list', algorithm: 'fixed-window' });
    app.get('/read', async (_request, reply) => ({
      seen: reply.getHeader('ratelimit'),
      onRaw: reply.raw.hasHeader('ratelimit'),
    }));
    app.get('/hijack', (_request, reply) => {
      reply.hijack();
      reply.raw.writeHead(200, {
        ...(reply.getHeaders() as OutgoingHttpHeaders),
        'content-type': 'text/plain',
      });
      reply.raw.end('raw');
    });
    const target = await serve(app);
    const read = await request(target, '/read');
    expect(JSON.parse(read.body)).toEqual({ seen: '"reply-list";r=4;t=60', onRaw: false });
    expect(read.headers.ratelimit).toBe('"reply-list";r=4;t=60');
    const raw = await request(target, '/hijack');
    expect(raw.body).toBe('raw');
    expect(raw.headers.ratelimit).toBe('"reply-list";r=3;t=60');
    expect(raw.headers['ratelimit-policy']).toBe('"reply-list";q=5;w=60');
  });

  it('route config overrides the plugin limit with a bucket of its own, and false opts out', async () => {
    const app = make();
    await app.register(floodgate, { limit: '10/min', name: name() });
    app.get('/strict', { config: { rateLimit: { limit: '2/min' } } }, async (request) => ({
      remaining: request.rateLimit?.remaining,
    }));
    app.get('/also-strict', { config: { rateLimit: { limit: '2/min' } } }, async () => 'ok');
    app.get('/free', { config: { rateLimit: false } }, async () => 'free');
    app.get('/', async () => 'ok');
    const target = await serve(app);

    const strict = await sequence(3, () => request(target, '/strict'));
    expect(strict.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(JSON.parse(strict[1].body)).toEqual({ remaining: 0 });
    expect(parseField(strict[0].headers['ratelimit-policy'])[0].name).toBe('2-in-1m');
    // Same policy text on another route: its own bucket (named after the route).
    expect((await request(target, '/also-strict')).status).toBe(200);
    for (let i = 0; i < 5; i++) {
      const free = await request(target, '/free');
      expect([free.status, free.headers.ratelimit]).toEqual([200, undefined]);
    }
    // The override did not spend from the plugin's limit.
    expect(remaining(await request(target, '/'))).toEqual([9]);
  });

  it('global: false limits only the routes that ask, inheriting the plugin options', async () => {
    const app = make();
    await app.register(floodgate, { global: false, headers: ['draft-11', 'legacy'] });
    app.get('/open', async () => 'open');
    app.get('/limited', { config: { rateLimit: { limit: '1/min' } } }, async () => 'limited');
    const target = await serve(app);
    for (let i = 0; i < 3; i++) expect((await request(target, '/open')).headers.ratelimit).toBeUndefined();
    const first = await request(target, '/limited');
    expect([first.status, first.headers['x-ratelimit-limit']]).toEqual([200, '1']);
    expect((await request(target, '/limited')).status).toBe(429);
  });

  it('app.rateLimit() returns a preHandler for one route, which the global limit then leaves alone', async () => {
    const app = make();
    await app.register(floodgate, { limit: '100/min', name: name() });
    app.get('/one', { preHandler: app.rateLimit({ limit: '2/min', name: name() }) }, async () => 'one');
    app.get('/', async () => 'ok');
    const target = await serve(app);
    const replies = await sequence(3, () => request(target, '/one'));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(remaining(replies[0])).toEqual([1]);
    expect(remaining(await request(target, '/'))).toEqual([99]);
  });

  it('registers its hooks once per route, not per request, and keeps HEAD on the GET bucket', async () => {
    const app = make();
    await app.register(floodgate, { limit: '4/min', name: name() });
    app.get('/', async () => 'ok');
    const target = await serve(app);
    expect(remaining(await request(target, '/'))).toEqual([3]);
    expect(remaining(await request(target, '/', { method: 'HEAD' }))).toEqual([2]);
    expect(remaining(await request(target, '/'))).toEqual([1]);
  });

  it('gives a route config and its HEAD twin one limiter (one bucket, no shared-bucket warning)', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error & { code?: string }) => warnings.push(warning.code ?? warning.message);
    process.on('warning', onWarning);
    try {
      const app = make();
      await app.register(floodgate, { global: false });
      app.get('/y', { config: { rateLimit: { limit: '4/min' } } }, async () => 'ok');
      const target = await serve(app);
      expect(remaining(await request(target, '/y'))).toEqual([3]);
      expect(remaining(await request(target, '/y', { method: 'HEAD' }))).toEqual([2]);
      expect(remaining(await request(target, '/y'))).toEqual([1]);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => w === 'FLOODGATE_SHARED_BUCKET')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('respects encapsulation: registered inside a child plugin, it limits only that plugin', async () => {
    const app = make();
    await app.register(async (child) => {
      await child.register(floodgate, { limit: '1/min', name: name() });
      child.get('/inside', async () => 'inside');
    });
    app.get('/outside', async () => 'outside');
    const target = await serve(app);
    expect((await request(target, '/inside')).status).toBe(200);
    expect((await request(target, '/inside')).status).toBe(429);
    for (let i = 0; i < 3; i++) expect((await request(target, '/outside')).status).toBe(200);
  });

  it('keys on a custom key, spends a custom cost, and skips', async () => {
    const app = make();
    await app.register(floodgate, {
      limit: '5/min',
      name: name(),
      key: (request) => `user:${request.headers['x-user'] ?? 'anonymous'}`,
      cost: (request) => Number(request.headers['x-cost'] ?? 1),
      skip: (request) => request.headers['x-internal'] === 'yes',
    });
    app.get('/', async () => 'ok');
    const target = await serve(app);
    const heavy = { 'x-user': 'ann', 'x-cost': '2' };
    const a = await sequence(3, () => request(target, '/', { headers: heavy }));
    expect(a.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(a.map((r) => remaining(r)[0])).toEqual([3, 1, 1]);
    expect((await request(target, '/', { headers: { 'x-user': 'bob' } })).status).toBe(200);
    const skipped = await request(target, '/', { headers: { 'x-user': 'ann', 'x-internal': 'yes' } });
    expect([skipped.status, skipped.headers.ratelimit]).toEqual([200, undefined]);
    expect((await request(target, '/', { headers: { 'x-user': 'ann' } })).status).toBe(200);
    expect((await request(target, '/', { headers: { 'x-user': 'ann' } })).status).toBe(429);
  });

  it('a key reading the parsed body works in the preHandler hook', async () => {
    const app = make();
    await app.register(floodgate, { global: false });
    app.post(
      '/login',
      {
        config: {
          rateLimit: {
            limit: '2/15m',
            hook: 'preHandler',
            key: (request) => `email:${(request.body as { email: string }).email}`,
          },
        },
      },
      async () => 'ok',
    );
    const target = await serve(app);
    const login = (email: string) =>
      request(target, '/login', { method: 'POST', body: JSON.stringify({ email }) });
    expect((await login('a@example.com')).status).toBe(200);
    expect((await login('a@example.com')).status).toBe(200);
    expect((await login('a@example.com')).status).toBe(429);
    expect((await login('b@example.com')).status).toBe(200);
  });

  it('skipSuccessfulRequests counts only failed responses', async () => {
    const app = make();
    await app.register(floodgate, { limit: '2/min', name: name(), skipSuccessfulRequests: true });
    app.get('/good', async () => 'fine');
    app.get('/bad', async (_request, reply) => reply.code(401).send({ error: 'wrong password' }));
    const target = await serve(app);
    for (let i = 0; i < 5; i++) expect((await request(target, '/good')).status).toBe(200);
    expect((await request(target, '/bad')).status).toBe(401);
    expect((await request(target, '/bad')).status).toBe(401);
    expect((await request(target, '/bad')).status).toBe(429);
    expect((await request(target, '/good')).status).toBe(429);
  });

  it('skipFailedRequests counts only successful responses', async () => {
    const app = make();
    await app.register(floodgate, { limit: '2/min', name: name(), skipFailedRequests: true });
    app.get('/good', async () => 'fine');
    app.get('/bad', async () => {
      throw new Error('broken');
    });
    await expectFailuresUncounted(await serve(app), '/bad', 500);
  });

  it('with trustProxy off, a spoofed X-Forwarded-For does not buy a new bucket', async () => {
    const app = make();
    await app.register(floodgate, { limit: '3/min', name: name() });
    app.get('/', async () => 'ok');
    await expectForwardedForIgnored(await serve(app));
  });

  it('with trustProxy on, groups IPv6 clients by /56 and counts ::ffff:a.b.c.d as a.b.c.d', async () => {
    const app = make({ trustProxy: '127.0.0.1' });
    await app.register(floodgate, { limit: '2/min', name: name() });
    app.get('/', async () => 'ok');
    await expectIpv6GroupedBy56(await serve(app));
  });

  it('admits exactly the limit out of many concurrent requests', async () => {
    const app = make();
    await app.register(floodgate, { limit: '10/min', name: name() });
    app.get('/', async () => 'ok');
    await expectExactUnderBurst(await serve(app));
  });

  it('admits exactly the limit with a key function, whether it answers at once or with a promise', async () => {
    for (const key of [
      (request: FastifyRequest) => `user:${request.headers['x-user']}`,
      async (request: FastifyRequest) => `user:${request.headers['x-user']}`,
    ]) {
      const app = make();
      await app.register(floodgate, { limit: '10/min', name: name(), key });
      app.get('/', async () => 'ok');
      const target = await serve(app);
      const replies = await burst(40, () => request(target, '/', { headers: { 'x-user': 'ann' } }));
      expect(statuses(replies)).toEqual({ 200: 10, 429: 30 });
      expect((await request(target, '/', { headers: { 'x-user': 'bob' } })).status).toBe(200);
    }
  });

  it('1,500 fuzzed keys (any Unicode, binary, braces, CR/LF, NUL, long): each its own count, nothing in the headers', async () => {
    const app = make();
    await app.register(floodgate, {
      limit: '1/min',
      name: name(),
      key: (request) => keyFromHeader(request.headers['x-key']),
    });
    app.get('/', async () => 'ok');
    await expectFuzzedKeysContained(await serve(app), fuzzKeys(1500, { maxLength: 2000 }));
  }, 60_000);

  it('a key function that throws gives Fastify an error (500), with no stack trace in the body', async () => {
    const app = make();
    await app.register(floodgate, {
      limit: '5/min',
      name: name(),
      key: (request) => {
        if (request.headers['x-user'] === undefined) throw new Error('no user header');
        return String(request.headers['x-user']);
      },
    });
    app.get('/', async () => 'ok');
    const target = await serve(app);
    const r = await request(target, '/');
    expect(r.status).toBe(500);
    expect(JSON.parse(r.body)).toMatchObject({ statusCode: 500, message: 'no user header' });
    expect(r.body).not.toMatch(/\bat /);
    expect((await request(target, '/', { headers: { 'x-user': 'a' } })).status).toBe(200);
  });

  it('replaces the answer with message or onLimit, and never hangs on an onLimit that sends nothing', async () => {
    const app = make();
    await app.register(floodgate, { global: false });
    app.get('/text', { config: { rateLimit: { limit: '1/min', message: 'slow down' } } }, async () => 'ok');
    app.get(
      '/custom',
      {
        config: {
          rateLimit: {
            limit: '1/min',
            onLimit: (_request, reply, decision) => reply.code(429).send({ policy: decision.policy }),
          },
        },
      },
      async () => 'ok',
    );
    app.get('/forgetful', { config: { rateLimit: { limit: '1/min', onLimit: () => {} } } }, async () => 'ok');
    const target = await serve(app);
    for (const path of ['/text', '/custom', '/forgetful']) await request(target, path);
    const text = await request(target, '/text');
    expect([text.status, text.headers['content-type'], text.body]).toEqual([
      429,
      'text/plain; charset=utf-8',
      'slow down',
    ]);
    const custom = await request(target, '/custom');
    expect([custom.status, JSON.parse(custom.body)]).toEqual([429, { policy: '1-in-1m' }]);
    const forgetful = await request(target, '/forgetful');
    expect([forgetful.status, forgetful.headers['content-type']]).toEqual([429, 'application/problem+json']);
  });

  it('a route onLimit replaces the plugin message on that route; the other routes keep the message', async () => {
    const app = make();
    await app.register(floodgate, {
      limit: '1/min',
      name: name(),
      statusCode: 429,
      message: { error: 'plugin: slow down' },
    });
    const answered: string[] = [];
    app.get(
      '/own',
      {
        config: {
          rateLimit: {
            limit: '1/min',
            onLimit: (request, reply, decision) => {
              answered.push(`${request.url} ${decision.remaining}`);
              return reply.code(429).send({ route: 'own', policy: decision.policy });
            },
          },
        },
      },
      async () => 'own',
    );
    app.get(
      '/hooked',
      {
        preHandler: app.rateLimit({
          limit: '1/min',
          onLimit: (_request, reply) => reply.code(429).send('hooked'),
        }),
      },
      async () => 'hooked',
    );
    app.get('/plain', async () => 'plain');
    const target = await serve(app);

    const own = await sequence(2, () => request(target, '/own'));
    expect(own.map((r) => r.status)).toEqual([200, 429]);
    expect(own[0].body).toBe('own');
    expect(own[1].headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(own[1].body)).toEqual({ route: 'own', policy: '1-in-1m' });
    expect(answered).toEqual(['/own 0']);

    const hooked = await sequence(2, () => request(target, '/hooked'));
    expect(hooked.map((r) => [r.status, r.body])).toEqual([
      [200, 'hooked'],
      [429, 'hooked'],
    ]);

    const plain = await sequence(2, () => request(target, '/plain'));
    expect(plain.map((r) => r.status)).toEqual([200, 429]);
    expect(plain[1].headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(plain[1].body)).toEqual({ error: 'plugin: slow down' });
    expect(answered).toEqual(['/own 0']);
  });

  it('a route message replaces the plugin onLimit on that route; the other routes keep the onLimit', async () => {
    const app = make();
    const answered: string[] = [];
    await app.register(floodgate, {
      limit: '1/min',
      name: name(),
      onLimit: (request, reply, decision) => {
        answered.push(`${request.url} ${decision.limit}`);
        return reply.code(429).send({ from: 'plugin onLimit' });
      },
    });
    app.get(
      '/own',
      { config: { rateLimit: { limit: '1/min', message: 'route: slow down' } } },
      async () => 'own',
    );
    app.get('/plain', async () => 'plain');
    const target = await serve(app);

    const own = await sequence(2, () => request(target, '/own'));
    expect(own.map((r) => [r.status, r.headers['content-type'], r.body])).toEqual([
      [200, 'text/plain; charset=utf-8', 'own'],
      [429, 'text/plain; charset=utf-8', 'route: slow down'],
    ]);
    expect(Number(own[1].headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(answered).toEqual([]);

    const plain = await sequence(2, () => request(target, '/plain'));
    expect(plain.map((r) => r.status)).toEqual([200, 429]);
    expect(JSON.parse(plain[1].body)).toEqual({ from: 'plugin onLimit' });
    expect(answered).toEqual(['/plain 1']);
  });

  it.each(ALGORITHM_NAMES)(
    'Retry-After is exact with %s: a retry one second early is denied, one on time is admitted',
    (algorithm) =>
      expectExactRetryAfter(algorithm, async (options) => {
        const app = make();
        await app.register(floodgate, { ...options, name: name() });
        app.get('/', async () => 'ok');
        return serve(app);
      }),
  );

  it('events.onLimit fires once per limited request with its Decision, beside the adapter onLimit', async () => {
    await expectLimitEvent(name(), async (options, answered) => {
      const app = make();
      await app.register(floodgate, {
        ...options,
        onLimit: (_request, reply, decision) => {
          answered.push(decision);
          return reply.code(429).send('answered');
        },
      });
      app.get('/', async () => 'ok');
      return serve(app);
    });
  });

  it('a route config inherits the plugin events', async () => {
    await expectLimitEvent(name(), async ({ limit, name: routeName, ...plugin }, answered) => {
      const app = make();
      await app.register(floodgate, { global: false, ...plugin });
      const onLimit: LimitHandler = (_request, reply, decision) => {
        answered.push(decision);
        return reply.code(429).send('answered');
      };
      app.get('/', { config: { rateLimit: { limit, name: routeName, onLimit } } }, async () => 'ok');
      return serve(app);
    });
  });

  it('a route config overriding events.onLimit keeps the plugin events.onStoreError; a plain route keeps both', async () => {
    // A store that answers like memory until it is switched off, so one route can be limited and then fail.
    const memory = new MemoryStore();
    let down = false;
    const store: Store = {
      kind: 'switchable',
      consume: (key, policies, cost) =>
        down ? Promise.reject(new Error('backend down')) : memory.consume(key, policies, cost),
      peek: (key, policies) => memory.peek(key, policies),
      reset: (key, buckets) => memory.reset(key, buckets),
      clear: (prefix) => memory.clear(prefix),
      entries: (prefix) => memory.entries(prefix),
      health: () => memory.health(),
      close: () => Promise.resolve(),
    };
    const pluginLimits: LimitEvent[] = [];
    const routeLimits: LimitEvent[] = [];
    const storeErrors: StoreErrorEvent[] = [];
    const pluginName = name();
    try {
      const app = make();
      await app.register(floodgate, {
        limit: '2/min',
        name: pluginName,
        store,
        events: {
          onLimit: (event) => pluginLimits.push(event),
          onStoreError: (event) => storeErrors.push(event),
        },
      });
      app.get(
        '/route',
        {
          config: { rateLimit: { limit: '1/min', events: { onLimit: (event) => routeLimits.push(event) } } },
        },
        async () => 'route',
      );
      app.get('/plain', async () => 'plain');
      const target = await serve(app);
      const failure = { store: 'primary', kind: 'switchable', operation: 'consume', key: '127.0.0.1' };
      const errorsSeen = () =>
        storeErrors.map(({ store, kind, operation, key }) => ({ store, kind, operation, key }));

      // The route's own onLimit replaces the plugin's on that route.
      expect((await sequence(2, () => request(target, '/route'))).map((r) => r.status)).toEqual([200, 429]);
      expect(routeLimits).toHaveLength(1);
      expect(routeLimits[0].key).toBe('127.0.0.1');
      expect(routeLimits[0].decision).toMatchObject({
        allowed: false,
        limit: 1,
        remaining: 0,
        degraded: false,
      });
      expect(routeLimits[0].decision.policy).toBe('1-in-1m');
      expect(pluginLimits).toEqual([]);

      // The plain route uses the plugin's onLimit.
      expect((await sequence(3, () => request(target, '/plain'))).map((r) => r.status)).toEqual([
        200, 200, 429,
      ]);
      expect(pluginLimits).toHaveLength(1);
      expect(pluginLimits[0].key).toBe('127.0.0.1');
      expect(pluginLimits[0].decision).toMatchObject({ allowed: false, limit: 2, policy: pluginName });
      expect(routeLimits).toHaveLength(1);
      expect(storeErrors).toEqual([]);

      // The plugin's onStoreError still fires on the route that gave its own events, and on the plain one.
      down = true;
      expect((await request(target, '/route')).status).toBe(503);
      expect(errorsSeen()).toEqual([failure]);
      expect((await request(target, '/plain')).status).toBe(503);
      expect(errorsSeen()).toEqual([failure, failure]);
      // A failed store is no limit: neither onLimit fired again.
      expect([routeLimits.length, pluginLimits.length]).toEqual([1, 1]);
    } finally {
      await memory.close();
    }
  });

  it('a hook a route names replaces the plugin hook of that name, at the top level or in events', async () => {
    const calls: string[] = [];
    const app = make();
    await app.register(floodgate, {
      global: false,
      limit: '5/min',
      store: failingStore(),
      onStoreError: () => calls.push('plugin onStoreError'),
      events: { onDegraded: (event) => calls.push(`plugin onDegraded ${event.mode}`) },
    });
    app.get(
      '/events',
      {
        config: {
          rateLimit: { events: { onStoreError: (event) => calls.push(`route onStoreError ${event.kind}`) } },
        },
      },
      async () => 'events',
    );
    app.get(
      '/top',
      { config: { rateLimit: { onDegraded: (event) => calls.push(`route onDegraded ${event.mode}`) } } },
      async () => 'top',
    );
    app.get('/inherits', { config: { rateLimit: {} } }, async () => 'inherits');
    const target = await serve(app);

    expect((await request(target, '/events')).status).toBe(503);
    expect(calls.splice(0)).toEqual(['route onStoreError failing', 'plugin onDegraded closed']);
    expect((await request(target, '/top')).status).toBe(503);
    expect(calls.splice(0)).toEqual(['plugin onStoreError', 'route onDegraded closed']);
    expect((await request(target, '/inherits')).status).toBe(503);
    expect(calls.splice(0)).toEqual(['plugin onStoreError', 'plugin onDegraded closed']);
  });

  it('answers 503 with Retry-After and no RateLimit numbers when a real store is down, and fires the store events', async () => {
    await expectStoreDownEvents(name(), async (options) => {
      const app = make();
      await app.register(floodgate, options);
      app.get('/', async () => 'ok');
      return serve(app);
    });
  });

  it('rejects bad options at registration with a stable code', async () => {
    await expect(make().register(floodgate, { limit: '5/min', globl: false } as never)).rejects.toThrowError(
      /FLOODGATE_UNKNOWN_OPTION: the floodgate plugin has no option "globl"; did you mean "global"\?/,
    );
    await expect(make().register(floodgate, {})).rejects.toThrowError(
      /FLOODGATE_INVALID_OPTION: .*needs a limit/,
    );
    await expect(
      make().register(floodgate, { limit: '5/min', hook: 'onSend' } as never),
    ).rejects.toThrowError(/hook "onSend" must be one of "onRequest", "preValidation", "preHandler"/);
    const app = make();
    await app.register(floodgate, { global: false });
    expect(() => app.get('/x', { config: { rateLimit: {} } }, async () => 'x')).toThrowError(
      /config.rateLimit of GET \/x needs a limit/,
    );
    expect(() =>
      app.get(
        '/y',
        { config: { rateLimit: { limit: '5/min', keyGen: () => 'k' } as never } },
        async () => 'y',
      ),
    ).toThrowError(/FLOODGATE_UNKNOWN_OPTION/);
  });
});
