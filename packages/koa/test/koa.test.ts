import { ALGORITHM_NAMES, type Decision, QUOTA_EXCEEDED_TYPE } from '@floodgate/core';
import Router from '@koa/router';
import Koa3, { type Context, type Next } from 'koa';
import Koa2 from 'koa2';
import { afterEach, describe, expect, it } from 'vitest';
import {
  assertCleanHeaders,
  expectExactRetryAfter,
  expectExactUnderBurst,
  expectFailuresUncounted,
  expectForwardedForIgnored,
  expectFuzzedKeysContained,
  expectIpv6GroupedBy56,
  expectLimitEvent,
  expectStoreDownEvents,
  names,
  Opened,
  parseField,
  request,
} from '../../core/test/support/adapters.js';
import { fuzzKeys, keyFromHeader } from '../../core/test/support/fuzz-keys.js';
import { RateLimit, rateLimit } from '../src/index.js';

const opened = new Opened();
const track = opened.track.bind(opened);
const serve = (app: Koa3) => opened.serve(app.callback());
const name = names('k');

afterEach(() => opened.closeAll());

function ok(ctx: Context): void {
  ctx.body = { ok: true };
}

describe.each([
  ['koa 3', Koa3],
  ['koa 2', Koa2],
])('%s', (_label, Koa) => {
  it('admits exactly the limit, then answers 429 with draft-11 headers, Retry-After and a problem body', async () => {
    const app = new Koa();
    app.use(track(rateLimit({ limit: '3/min', name: 'three', algorithm: 'fixed-window' })));
    app.use(ok);
    const target = await serve(app);
    const replies = [];
    for (let i = 0; i < 4; i++) replies.push(await request(target, '/'));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 429]);
    for (const r of replies) {
      assertCleanHeaders(r.headers);
      expect(
        parseField(r.headers['ratelimit-policy']).map((i) => [i.name, i.params.get('q'), i.params.get('w')]),
      ).toEqual([['three', 3, 60]]);
      const t = parseField(r.headers.ratelimit)[0].params.get('t') as number;
      expect(t >= 1 && t <= 60).toBe(true);
    }
    expect(replies.map((r) => parseField(r.headers.ratelimit)[0].params.get('r'))).toEqual([2, 1, 0, 0]);
    const denied = replies[3];
    const retryAfter = Number(denied.headers['retry-after']);
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
    expect(denied.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(denied.body)).toMatchObject({
      type: QUOTA_EXCEEDED_TYPE,
      status: 429,
      'violated-policies': ['three'],
    });
  });

  it('limits one route with @koa/router and exposes ctx.state.rateLimit', async () => {
    const app = new Koa();
    const router = new Router();
    app.use(track(rateLimit({ limit: '10/min', name: name() })));
    const login = name();
    router.post('/login', track(rateLimit({ limit: '2/15m', name: login })), (ctx: Context) => {
      ctx.body = { remaining: ctx.state.rateLimit?.remaining };
    });
    router.get('/', ok);
    app.use(router.routes());
    const target = await serve(app);
    const logins = [];
    for (let i = 0; i < 3; i++) logins.push(await request(target, '/login', { method: 'POST' }));
    expect(logins.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(JSON.parse(logins[1].body)).toEqual({ remaining: 0 });
    expect(parseField(logins[2].headers.ratelimit)[0].name).toBe(login);
    const home = await request(target, '/');
    expect(home.status).toBe(200);
    expect(parseField(home.headers.ratelimit)[0].params.get('r')).toBe(6);
  });

  it('keys on a custom key, spends a custom cost, and skips', async () => {
    const app = new Koa();
    app.use(
      track(
        rateLimit({
          limit: '5/min',
          name: name(),
          key: (ctx) => `user:${ctx.get('x-user') || 'anonymous'}`,
          cost: (ctx) => Number(ctx.get('x-cost') || 1),
          skip: (ctx) => ctx.get('x-internal') === 'yes',
        }),
      ),
    );
    app.use(ok);
    const target = await serve(app);
    const heavy = { 'x-user': 'ann', 'x-cost': '2' };
    const a = [];
    for (let i = 0; i < 3; i++) a.push(await request(target, '/', { headers: heavy }));
    expect(a.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(a.map((r) => parseField(r.headers.ratelimit)[0].params.get('r'))).toEqual([3, 1, 1]);
    expect((await request(target, '/', { headers: { 'x-user': 'bob' } })).status).toBe(200);
    const skipped = await request(target, '/', {
      headers: { 'x-user': 'ann', 'x-internal': 'yes', 'x-cost': '9' },
    });
    expect([skipped.status, skipped.headers.ratelimit]).toEqual([200, undefined]);
    expect((await request(target, '/', { headers: { 'x-user': 'ann' } })).status).toBe(200);
    expect((await request(target, '/', { headers: { 'x-user': 'ann' } })).status).toBe(429);
  });

  it('skipSuccessfulRequests counts only failed responses, thrown errors included', async () => {
    const app = new Koa();
    app.silent = true;
    app.use(track(rateLimit({ limit: '2/min', name: name(), skipSuccessfulRequests: true })));
    app.use((ctx: Context) => {
      if (ctx.path === '/bad') ctx.throw(401, 'wrong password');
      ctx.body = 'fine';
    });
    const target = await serve(app);
    for (let i = 0; i < 5; i++) expect((await request(target, '/good')).status).toBe(200);
    expect((await request(target, '/bad')).status).toBe(401);
    expect((await request(target, '/bad')).status).toBe(401);
    expect((await request(target, '/bad')).status).toBe(429);
    expect((await request(target, '/good')).status).toBe(429);
  });

  it('skipFailedRequests counts only successful responses', async () => {
    const app = new Koa();
    app.use(track(rateLimit({ limit: '2/min', name: name(), skipFailedRequests: true })));
    app.use((ctx: Context) => {
      if (ctx.path === '/good') ctx.body = 'fine';
      // anything else: Koa's 404
    });
    await expectFailuresUncounted(await serve(app), '/missing', 404);
  });

  it('with app.proxy off, a spoofed X-Forwarded-For does not buy a new bucket', async () => {
    const app = new Koa();
    app.use(track(rateLimit({ limit: '3/min', name: name() })));
    app.use(ok);
    await expectForwardedForIgnored(await serve(app));
  });

  it('with app.proxy on, groups IPv6 clients by /56 and counts ::ffff:a.b.c.d as a.b.c.d', async () => {
    const app = new Koa();
    app.proxy = true;
    app.use(track(rateLimit({ limit: '2/min', name: name() })));
    app.use(ok);
    await expectIpv6GroupedBy56(await serve(app));
  });

  it('admits exactly the limit out of many concurrent requests', async () => {
    const app = new Koa();
    app.use(track(rateLimit({ limit: '10/min', name: name() })));
    app.use(ok);
    await expectExactUnderBurst(await serve(app));
  });

  it('1,000 fuzzed keys (any Unicode, binary, braces, CR/LF, NUL, long): each its own count, nothing in the headers', async () => {
    const app = new Koa();
    app.use(
      track(rateLimit({ limit: '1/min', name: name(), key: (ctx) => keyFromHeader(ctx.get('x-key')) })),
    );
    app.use(ok);
    await expectFuzzedKeysContained(await serve(app), fuzzKeys(1000, { maxLength: 2000 }));
  }, 60_000);

  it('replaces the answer with message or onLimit', async () => {
    const app = new Koa();
    const router = new Router();
    router.get('/text', track(rateLimit({ limit: '1/min', name: name(), message: 'slow down' })), ok);
    router.get(
      '/custom',
      track(
        rateLimit({
          limit: '1/min',
          name: name(),
          onLimit: (ctx, decision) => {
            ctx.status = 429;
            ctx.body = { retryInMs: decision.retryAfterMs > 0 };
          },
        }),
      ),
      ok,
    );
    app.use(router.routes());
    const target = await serve(app);
    await request(target, '/text');
    await request(target, '/custom');
    const text = await request(target, '/text');
    expect([text.status, text.headers['content-type'], text.body]).toEqual([
      429,
      'text/plain; charset=utf-8',
      'slow down',
    ]);
    const custom = await request(target, '/custom');
    expect([custom.status, JSON.parse(custom.body)]).toEqual([429, { retryInMs: true }]);
    expect(Number(custom.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('a key function error goes to Koa error handling with no stack trace in the body', async () => {
    const app = new Koa();
    app.silent = true;
    app.use(
      track(
        rateLimit({
          limit: '5/min',
          name: name(),
          key: () => {
            throw new Error('secret detail');
          },
        }),
      ),
    );
    app.use(ok);
    const target = await serve(app);
    const r = await request(target, '/');
    expect(r.status).toBe(500);
    expect(r.body).toBe('Internal Server Error');
  });

  it('answers 500 (not a shared bucket) when Koa knows no client address', async () => {
    const app = new Koa();
    let handled = 0;
    app.use(track(rateLimit({ limit: '100/min', name: name() })));
    app.use((ctx: Context) => {
      handled += 1;
      ctx.body = 'ok';
    });
    const target = await opened.serveUnix(app.callback());
    const r = await request(target, '/');
    expect([r.status, r.headers['content-type']]).toEqual([500, 'application/problem+json']);
    expect(handled).toBe(0);
  });

  it.each(ALGORITHM_NAMES)(
    'Retry-After is exact with %s: a retry one second early is denied, one on time is admitted',
    (algorithm) =>
      expectExactRetryAfter(algorithm, (options) => {
        const app = new Koa();
        app.use(track(rateLimit({ ...options, name: name() })));
        app.use(ok);
        return serve(app);
      }),
  );

  it('events.onLimit fires once per limited request with its Decision, beside the adapter onLimit', async () => {
    await expectLimitEvent(name(), async (options, answered) => {
      const app = new Koa();
      const onLimit = (ctx: Context, decision: Decision) => {
        answered.push(decision);
        ctx.status = 429;
        ctx.body = 'answered';
      };
      app.use(track(rateLimit({ ...options, onLimit })));
      app.use(ok);
      return serve(app);
    });
  });

  it('@RateLimit decorates a class handler (TC39 decorators)', async () => {
    const limitName = name();
    class Auth {
      calls = 0;
      @RateLimit({ limit: '2/min', name: limitName })
      async login(ctx: Context, _next: Next): Promise<void> {
        this.calls += 1;
        ctx.body = { calls: this.calls, remaining: ctx.state.rateLimit?.remaining };
      }
    }
    const auth = new Auth();
    const app = new Koa();
    const router = new Router();
    router.post('/login', (ctx: Context, next: Next) => auth.login(ctx, next));
    app.use(router.routes());
    const target = await serve(app);
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await request(target, '/login', { method: 'POST' }));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(JSON.parse(replies[1].body)).toEqual({ calls: 2, remaining: 0 });
    expect(auth.calls).toBe(2);
  });
});

describe('store failure', () => {
  it('answers 503 with Retry-After and no RateLimit numbers when a real store is down, and fires the store events', async () => {
    await expectStoreDownEvents(name(), async (options) => {
      const app = new Koa3();
      app.use(track(rateLimit(options)));
      app.use(ok);
      return serve(app);
    });
  });
});

describe('options', () => {
  it('rejects unknown options with a did-you-mean', () => {
    expect(() => rateLimit({ limit: '5/min', ipv6subnet: 64 } as never)).toThrowError(
      /FLOODGATE_UNKNOWN_OPTION: rateLimit\(\) has no option "ipv6subnet"; did you mean "ipv6Subnet"\?/,
    );
  });
});
