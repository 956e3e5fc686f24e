import {
  ALGORITHM_NAMES,
  type Decision,
  FloodgateError,
  MemoryStore,
  QUOTA_EXCEEDED_TYPE,
  RedisStore,
} from '@floodgate/core';
import express5, { type NextFunction, type Request, type Response } from 'express';
import express4 from 'express4';
import { afterEach, describe, expect, it } from 'vitest';
import {
  assertCleanHeaders,
  type EventOptions,
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
  Opened,
  parseField,
  request,
} from '../../core/test/support/adapters.js';
import { fuzzKeys, keyFromHeader } from '../../core/test/support/fuzz-keys.js';
import { RateLimit, rateLimit } from '../src/index.js';

const opened = new Opened();
const track = opened.track.bind(opened);
const serve = (app: ReturnType<typeof express5>) => opened.serve(app);
/** A unique policy name per test, so limiters never share a bucket or warn about it. */
const name = names('t');

afterEach(() => opened.closeAll());

function ok(_req: Request, res: Response): void {
  res.json({ ok: true });
}

describe.each([
  ['express 5', express5],
  ['express 4', express4],
])('%s', (_label, express) => {
  it('admits exactly the limit, then answers 429 with draft-11 headers, Retry-After and a problem body', async () => {
    const app = express();
    app.use(track(rateLimit({ limit: '3/min', name: 'three' })));
    app.get('/', ok);
    const target = await serve(app);

    const replies = [];
    for (let i = 0; i < 5; i++) replies.push(await request(target, '/'));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 429, 429]);
    for (const r of replies) {
      assertCleanHeaders(r.headers);
      const policy = parseField(r.headers['ratelimit-policy']);
      expect(policy).toHaveLength(1);
      expect(policy[0].name).toBe('three');
      expect(policy[0].params.get('q')).toBe(3);
      expect(policy[0].params.get('w')).toBe(60);
    }
    const remaining = replies.map((r) => parseField(r.headers.ratelimit)[0].params.get('r'));
    expect(remaining).toEqual([2, 1, 0, 0, 0]);
    for (const r of replies) {
      const t = parseField(r.headers.ratelimit)[0].params.get('t') as number;
      expect(Number.isInteger(t)).toBe(true);
      expect(t).toBeGreaterThanOrEqual(1);
      // The sliding window gets its full limit back once the previous window's weight is gone too: <= 2 windows.
      expect(t).toBeLessThanOrEqual(120);
    }
    expect(replies[0].headers['retry-after']).toBeUndefined();
    const denied = replies[3];
    const retryAfter = Number(denied.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    // Sliding window: the previous window's weight must fade as well, so the wait can pass 60 s.
    expect(retryAfter).toBeLessThanOrEqual(120);
    expect(denied.headers['content-type']).toBe('application/problem+json');
    const problem = JSON.parse(denied.body);
    expect(problem).toEqual({
      type: QUOTA_EXCEEDED_TYPE,
      title: 'Request cannot be satisfied as assigned quota has been exceeded',
      status: 429,
      detail: expect.any(String),
      'violated-policies': ['three'],
    });
    expect(denied.body).not.toMatch(/\bat .*:\d+:\d+/);
  });

  it('lists one item per policy and names only the violated ones', async () => {
    const app = express();
    app.use(track(rateLimit({ limit: ['2/s', '3/min'], name: undefined, prefix: `${name()}:` })));
    app.get('/', ok);
    const target = await serve(app);
    const first = await request(target, '/');
    const items = parseField(first.headers.ratelimit);
    expect(items.map((i) => i.name)).toEqual(['2-in-1s', '3-in-1m']);
    expect(items.map((i) => i.params.get('r'))).toEqual([1, 2]);
    expect(
      parseField(first.headers['ratelimit-policy']).map((i) => [
        i.name,
        i.params.get('q'),
        i.params.get('w'),
      ]),
    ).toEqual([
      ['2-in-1s', 2, 1],
      ['3-in-1m', 3, 60],
    ]);
    const second = await request(target, '/');
    const third = await request(target, '/');
    expect([second.status, third.status]).toEqual([200, 429]);
    expect(parseField(third.headers.ratelimit).map((i) => i.params.get('r'))).toEqual([0, 1]);
    expect(JSON.parse(third.body)['violated-policies']).toEqual(['2-in-1s']);
  });

  it('sends draft-7, draft-6 and legacy headers on request, and none with headers: false', async () => {
    const app = express();
    const fixed = { limit: '5/15m', algorithm: 'fixed-window' } as const;
    app.get('/7', track(rateLimit({ ...fixed, name: name(), headers: 'draft-7' })), ok);
    app.get('/6', track(rateLimit({ ...fixed, name: name(), headers: ['draft-6', 'legacy'] })), ok);
    app.get('/none', track(rateLimit({ limit: '1/15m', name: name(), headers: false })), ok);
    const target = await serve(app);

    const r7 = await request(target, '/7');
    expect(r7.headers['ratelimit-policy']).toBe('5;w=900');
    expect(r7.headers.ratelimit).toMatch(/^limit=5, remaining=4, reset=(899|900)$/);

    const before = Math.floor(Date.now() / 1000);
    const r6 = await request(target, '/6');
    expect(r6.headers['ratelimit-policy']).toBe('5;w=900');
    expect(r6.headers['ratelimit-limit']).toBe('5');
    expect(r6.headers['ratelimit-remaining']).toBe('4');
    expect(['899', '900']).toContain(r6.headers['ratelimit-reset']);
    expect(r6.headers['x-ratelimit-limit']).toBe('5');
    expect(r6.headers['x-ratelimit-remaining']).toBe('4');
    const resetAt = Number(r6.headers['x-ratelimit-reset']);
    expect(resetAt).toBeGreaterThanOrEqual(before + 899);
    expect(resetAt).toBeLessThanOrEqual(before + 902);
    expect(r6.headers.ratelimit).toBeUndefined();

    const none = await request(target, '/none');
    const limited = await request(target, '/none');
    expect(none.headers.ratelimit).toBeUndefined();
    expect(none.headers['ratelimit-policy']).toBeUndefined();
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('counts a stricter route limit separately from the app-wide one', async () => {
    const app = express();
    app.use(track(rateLimit({ limit: '10/min', name: name() })));
    const login = name();
    app.post('/login', track(rateLimit({ limit: '2/15m', name: login })), ok);
    app.get('/', ok);
    const target = await serve(app);
    const logins = [];
    for (let i = 0; i < 3; i++) logins.push(await request(target, '/login', { method: 'POST' }));
    expect(logins.map((r) => r.status)).toEqual([200, 200, 429]);
    // The last limiter the request passed sets the header; the app-wide count went on (3 used).
    expect(parseField(logins[2].headers.ratelimit)[0].name).toBe(login);
    const home = await request(target, '/');
    expect(home.status).toBe(200);
    expect(parseField(home.headers.ratelimit)[0].params.get('r')).toBe(6);
  });

  it('exposes the Decision as req.rateLimit', async () => {
    const app = express();
    app.use(track(rateLimit({ limit: '4/min', name: name() })));
    app.get('/', (req, res) => {
      res.json({
        remaining: req.rateLimit?.remaining,
        limit: req.rateLimit?.limit,
        degraded: req.rateLimit?.degraded,
      });
    });
    const target = await serve(app);
    expect(JSON.parse((await request(target, '/')).body)).toEqual({
      remaining: 3,
      limit: 4,
      degraded: false,
    });
    expect(JSON.parse((await request(target, '/')).body)).toEqual({
      remaining: 2,
      limit: 4,
      degraded: false,
    });
  });

  it('keys on a custom key function and spends a custom cost', async () => {
    const app = express();
    app.use(
      track(
        rateLimit({
          limit: '5/min',
          name: name(),
          key: (req) => `user:${req.get('x-user') ?? 'anonymous'}`,
          cost: (req) => Number(req.get('x-cost') ?? 1),
        }),
      ),
    );
    app.get('/', ok);
    const target = await serve(app);
    const heavy = { 'x-user': 'ann', 'x-cost': '2' };
    const a = [];
    for (let i = 0; i < 3; i++) a.push(await request(target, '/', { headers: heavy }));
    expect(a.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(a.map((r) => parseField(r.headers.ratelimit)[0].params.get('r'))).toEqual([3, 1, 1]);
    // Another user has a bucket of its own; a cost of 1 still fits in ann's last unit.
    expect((await request(target, '/', { headers: { 'x-user': 'bob' } })).status).toBe(200);
    expect((await request(target, '/', { headers: { 'x-user': 'ann' } })).status).toBe(200);
    expect((await request(target, '/', { headers: { 'x-user': 'ann' } })).status).toBe(429);
  });

  it('a fixed cost larger than the limit is denied with a problem body saying so', async () => {
    const app = express();
    app.use(track(rateLimit({ limit: '3/min', name: name(), cost: 4 })));
    app.get('/', ok);
    const target = await serve(app);
    const r = await request(target, '/');
    expect(r.status).toBe(429);
    expect(JSON.parse(r.body).detail).toMatch(/costs more than the limit/);
    expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('lets skipped requests through uncounted and without headers', async () => {
    const app = express();
    app.use(
      track(rateLimit({ limit: '1/min', name: name(), skip: (req) => req.get('x-internal') === 'yes' })),
    );
    app.get('/', ok);
    const target = await serve(app);
    for (let i = 0; i < 3; i++) {
      const r = await request(target, '/', { headers: { 'x-internal': 'yes' } });
      expect(r.status).toBe(200);
      expect(r.headers.ratelimit).toBeUndefined();
    }
    expect((await request(target, '/')).status).toBe(200);
    expect((await request(target, '/')).status).toBe(429);
  });

  it('skipSuccessfulRequests counts only failed responses', async () => {
    const app = express();
    app.use(track(rateLimit({ limit: '2/min', name: name(), skipSuccessfulRequests: true })));
    app.get('/good', ok);
    app.get('/bad', (_req, res) => {
      res.status(401).json({ error: 'wrong password' });
    });
    const target = await serve(app);
    for (let i = 0; i < 5; i++) expect((await request(target, '/good')).status).toBe(200);
    expect((await request(target, '/bad')).status).toBe(401);
    expect((await request(target, '/bad')).status).toBe(401);
    expect((await request(target, '/bad')).status).toBe(429);
    expect((await request(target, '/good')).status).toBe(429);
  });

  it('skipFailedRequests counts only successful responses', async () => {
    const app = express();
    app.use(track(rateLimit({ limit: '2/min', name: name(), skipFailedRequests: true })));
    app.get('/good', ok);
    app.get('/bad', (_req, res) => {
      res.status(500).end();
    });
    await expectFailuresUncounted(await serve(app), '/bad', 500);
  });

  it('with trust proxy off, a spoofed X-Forwarded-For does not buy a new bucket', async () => {
    const app = express();
    app.use(track(rateLimit({ limit: '3/min', name: name() })));
    app.get('/', ok);
    await expectForwardedForIgnored(await serve(app));
  });

  it('with trust proxy on, groups IPv6 clients by /56 and counts ::ffff:a.b.c.d as a.b.c.d', async () => {
    const app = express();
    app.set('trust proxy', 'loopback');
    app.use(track(rateLimit({ limit: '2/min', name: name() })));
    app.get('/', (req, res) => {
      res.json({ ip: req.ip });
    });
    await expectIpv6GroupedBy56(await serve(app));
  });

  it('ipv6Subnet: false and 64 change the grouping', async () => {
    const app = express();
    app.set('trust proxy', 'loopback');
    app.get('/whole', track(rateLimit({ limit: '1/min', name: name(), ipv6Subnet: false })), ok);
    app.get('/64', track(rateLimit({ limit: '1/min', name: name(), ipv6Subnet: 64 })), ok);
    const target = await serve(app);
    const get = (path: string, ip: string) =>
      request(target, path, { headers: { 'x-forwarded-for': ip } }).then((r) => r.status);
    expect(await get('/whole', '2001:db8::1')).toBe(200);
    expect(await get('/whole', '2001:db8::2')).toBe(200);
    expect(await get('/whole', '2001:db8::1')).toBe(429);
    expect(await get('/64', '2001:db8:0:1::1')).toBe(200);
    expect(await get('/64', '2001:db8:0:1::2')).toBe(429);
    expect(await get('/64', '2001:db8:0:2::1')).toBe(200);
  });

  it('admits exactly the limit out of many concurrent requests', async () => {
    const app = express();
    app.use(track(rateLimit({ limit: '10/min', name: name() })));
    app.get('/', ok);
    await expectExactUnderBurst(await serve(app));
  });

  it('replaces the body with message, or the whole answer with onLimit', async () => {
    const app = express();
    app.get('/text', track(rateLimit({ limit: '1/min', name: name(), message: 'slow down' })), ok);
    app.get(
      '/json',
      track(rateLimit({ limit: '1/min', name: name(), statusCode: 503, message: { error: 'busy' } })),
      ok,
    );
    const customName = name();
    app.get(
      '/custom',
      track(
        rateLimit({
          limit: '1/min',
          name: customName,
          onLimit: (_req, res, decision) => {
            res.status(429).json({ wait: decision.retryAfterMs > 0, policy: decision.policy });
          },
        }),
      ),
      ok,
    );
    const target = await serve(app);
    for (const path of ['/text', '/json', '/custom']) await request(target, path);
    const text = await request(target, '/text');
    expect([text.status, text.headers['content-type'], text.body]).toEqual([
      429,
      'text/plain; charset=utf-8',
      'slow down',
    ]);
    const json = await request(target, '/json');
    expect([json.status, json.body]).toEqual([503, '{"error":"busy"}']);
    const custom = await request(target, '/custom');
    expect(custom.status).toBe(429);
    expect(JSON.parse(custom.body)).toEqual({ wait: true, policy: customName });
    expect(Number(custom.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(custom.headers.ratelimit).toBeDefined();
  });

  it('sends a key function error to the app error handler', async () => {
    const app = express();
    app.use(
      track(
        rateLimit({
          limit: '5/min',
          name: name(),
          key: (req) => {
            if (req.get('x-user') === undefined) throw new Error('no user header');
            return String(req.get('x-user'));
          },
        }),
      ),
    );
    app.get('/', ok);
    app.use((error: Error, _req: Request, res: Response, _next: NextFunction) => {
      res.status(400).json({ handled: error.message });
    });
    const target = await serve(app);
    const r = await request(target, '/');
    expect([r.status, JSON.parse(r.body)]).toEqual([400, { handled: 'no user header' }]);
    expect((await request(target, '/', { headers: { 'x-user': 'a' } })).status).toBe(200);
  });

  it('answers 500 (not a shared bucket) when the framework knows no client address', async () => {
    const app = express();
    let handled = 0;
    app.use(track(rateLimit({ limit: '100/min', name: name() })));
    app.get('/', (_req, res) => {
      handled += 1;
      res.end('ok');
    });
    // On a Unix socket there is no peer address: req.ip is undefined.
    const target = await opened.serveUnix(app);
    const r = await request(target, '/');
    expect(r.status).toBe(500);
    expect(r.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(r.body).title).toBe('Internal Server Error');
    expect(r.body).not.toMatch(/\bat .*:\d+:\d+/);
    expect(handled).toBe(0);
  });

  it.each(ALGORITHM_NAMES)(
    'Retry-After is exact with %s: a retry one second early is denied, one on time is admitted',
    (algorithm) =>
      expectExactRetryAfter(algorithm, (options) => {
        const app = express();
        app.use(track(rateLimit({ ...options, name: name() })));
        app.get('/', ok);
        return serve(app);
      }),
  );

  it('events.onLimit fires once per limited request with its Decision, beside the adapter onLimit', async () => {
    await expectLimitEvent(name(), async (options, answered) => {
      const app = express();
      const onLimit = (_req: Request, res: Response, decision: Decision) => {
        answered.push(decision);
        res.status(429).send('answered');
      };
      app.use(track(rateLimit({ ...options, onLimit })));
      app.get('/', ok);
      return serve(app);
    });
  });

  it('odd keys (1 MB, CR/LF, NUL, braces, emoji) never escape into headers or break the response', async () => {
    const app = express();
    app.use(express.json({ limit: '2mb' }));
    app.use(track(rateLimit({ limit: '2/min', name: name(), key: (req) => String(req.body.k) })));
    app.post('/', ok);
    app.use((_error: Error, _req: Request, res: Response, _next: NextFunction) => {
      res.status(500).json({ error: 'handled' });
    });
    const target = await serve(app);
    const keys = ['a'.repeat(1_000_000), 'line\r\nX-Injected: 1', 'nul\u0000byte', '{slot}', '🦀 ключ', ''];
    for (const k of keys) {
      const replies = [];
      for (let i = 0; i < 3; i++) {
        replies.push(await request(target, '/', { method: 'POST', body: JSON.stringify({ k }) }));
      }
      for (const r of replies) {
        assertCleanHeaders(r.headers);
        expect(r.headers['x-injected']).toBeUndefined();
      }
      // An empty key is refused (it would be one bucket for everyone): the app's error handler answers.
      expect(replies.map((r) => r.status)).toEqual(k === '' ? [500, 500, 500] : [200, 200, 429]);
    }
  });

  it('1,000 fuzzed keys (any Unicode, binary, braces, CR/LF, NUL, long): each its own count, nothing in the headers', async () => {
    const app = express();
    app.use(
      track(rateLimit({ limit: '1/min', name: name(), key: (req) => keyFromHeader(req.headers['x-key']) })),
    );
    app.get('/', ok);
    await expectFuzzedKeysContained(await serve(app), fuzzKeys(1000, { maxLength: 2000 }));
  }, 60_000);

  it('@RateLimit decorates a class handler (TC39 decorators)', async () => {
    const limitName = name();
    class Auth {
      calls = 0;
      @RateLimit({ limit: '2/min', name: limitName })
      login(req: Request, res: Response, _next: NextFunction): void {
        this.calls += 1;
        res.json({ calls: this.calls, remaining: req.rateLimit?.remaining });
      }
    }
    const auth = new Auth();
    const app = express();
    app.post('/login', (req, res, next) => auth.login(req, res, next));
    const target = await serve(app);
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await request(target, '/login', { method: 'POST' }));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(JSON.parse(replies[1].body)).toEqual({ calls: 2, remaining: 0 });
    expect(auth.calls).toBe(2);
    expect(parseField(replies[2].headers.ratelimit)[0].name).toBe(limitName);
  });
});

describe('store failure', () => {
  it('answers 503 with Retry-After and no RateLimit numbers when a real store is down, and fires the store events', async () => {
    await expectStoreDownEvents(name(), async (options: EventOptions) => {
      const app = express5();
      app.use(track(rateLimit({ ...options, timeoutMs: 300 })));
      app.get('/', ok);
      return serve(app);
    });
  });

  it('with skipOnError, lets the request through without invented numbers', async () => {
    const failing = failingStore();
    const app = express5();
    app.get(
      '/open',
      track(rateLimit({ limit: '5/min', name: name(), store: failing, skipOnError: true })),
      (req, res) => {
        res.json({ degraded: req.rateLimit?.degraded });
      },
    );
    app.get('/closed', track(rateLimit({ limit: '5/min', name: name(), store: failing })), ok);
    const target = await serve(app);
    const open = await request(target, '/open');
    expect([open.status, JSON.parse(open.body)]).toEqual([200, { degraded: 'open' }]);
    expect(open.headers.ratelimit).toBeUndefined();
    const closed = await request(target, '/closed');
    expect(closed.status).toBe(503);
    expect(closed.headers['retry-after']).toBe('1');
    expect(closed.body).not.toMatch(/secret|Error/);
  });

  it('a fallback store decides with real numbers while the primary is down', async () => {
    const primary = new RedisStore({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 100, timeoutMs: 100 });
    const app = express5();
    app.use(track(rateLimit({ limit: '2/min', name: name(), store: primary, fallback: new MemoryStore() })));
    app.get('/', (req, res) => {
      res.json({ degraded: req.rateLimit?.degraded });
    });
    const target = await serve(app);
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await request(target, '/'));
    await primary.close();
    expect(replies.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(JSON.parse(replies[0].body)).toEqual({ degraded: 'fallback' });
    expect(replies.map((r) => parseField(r.headers.ratelimit)[0].params.get('r'))).toEqual([1, 0, 0]);
  });
});

describe('options', () => {
  it('rejects an unknown option at construction with a did-you-mean', () => {
    expect(() => rateLimit({ limit: '5/min', skipSuccesfulRequests: true } as never)).toThrowError(
      /FLOODGATE_UNKNOWN_OPTION: rateLimit\(\) has no option "skipSuccesfulRequests"; did you mean "skipSuccessfulRequests"\?/,
    );
    try {
      rateLimit({ limit: '5/min', keyGenerator: () => 'x' } as never);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(FloodgateError);
      expect((error as FloodgateError).code).toBe('FLOODGATE_UNKNOWN_OPTION');
    }
  });

  it('rejects bad values with FLOODGATE_INVALID_OPTION naming what to write', () => {
    const bad: Array<[object, RegExp]> = [
      [{ headers: 'draft-8' }, /headers "draft-8" is not a header standard; write one of "draft-11"/],
      [{ headers: ['draft-11', 'draft-7'] }, /mixes "draft-11" with "draft-7"/],
      [{ statusCode: 200 }, /statusCode 200 must be an HTTP error status/],
      [{ cost: -1 }, /cost -1 must be a whole number >= 0/],
      [{ cost: 1.5 }, /cost 1.5 must be a whole number >= 0/],
      [{ ipv6Subnet: 0 }, /ipv6Subnet 0 must be a prefix length from 1 to 128/],
      [{ ipv6Subnet: 129 }, /ipv6Subnet 129/],
      [{ key: 'ip' }, /key "ip" must be a function/],
      [{ skipFailedRequests: 'yes' }, /skipFailedRequests "yes" must be true or false/],
      [{ message: 'x', onLimit: () => {} }, /either message or onLimit/],
    ];
    for (const [options, message] of bad) {
      expect(() => rateLimit({ limit: '5/min', ...options } as never)).toThrowError(message);
      try {
        rateLimit({ limit: '5/min', ...options } as never);
      } catch (error) {
        expect((error as FloodgateError).code).toBe('FLOODGATE_INVALID_OPTION');
      }
    }
    expect(() => rateLimit({ limit: '5/mn' })).toThrowError(/FLOODGATE_INVALID_RATE/);
    expect(() => rateLimit(undefined as never)).toThrowError(/needs an options object/);
  });
});
