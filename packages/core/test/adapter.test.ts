import { describe, expect, it } from 'vitest';
import { RequestLimiter } from '../src/adapter.js';
import { MemoryStore } from '../src/stores/memory.js';
import { failingStore } from './support/adapters.js';

interface Req {
  ip?: string;
  user?: string;
  cost?: number;
  internal?: boolean;
}

function target() {
  const headers: Record<string, string> = {};
  return { headers, setHeader: (name: string, value: string) => (headers[name] = value) };
}

describe('RequestLimiter', () => {
  it('keys on the normalized client address, sets headers, and reports what the refund needs', async () => {
    const plan = new RequestLimiter<Req>({ limit: '2/min', name: 'ra', store: new MemoryStore() });
    const t = target();
    const first = await plan.check({}, '::ffff:192.0.2.1', t);
    expect(first).toMatchObject({ key: '192.0.2.1', cost: 1, decision: { allowed: true, remaining: 1 } });
    expect(t.headers['RateLimit-Policy']).toBe('"ra";q=2;w=60');
    expect(t.headers['Retry-After']).toBeUndefined();
    await plan.check({}, '192.0.2.1', t);
    const third = await plan.check({}, '192.0.2.1', t);
    expect(third).toMatchObject({ decision: { allowed: false, remaining: 0 } });
    expect(Number(t.headers['Retry-After'])).toBeGreaterThanOrEqual(1);
    await plan.limiter.close();
  });

  it('begin answers at once with a memory store and functions that answer at once, else with a promise', async () => {
    const plan = new RequestLimiter<Req>({ limit: '2/min', name: 'rn', store: new MemoryStore(), cost: 2 });
    const t = target();
    const now = plan.begin({}, '192.0.2.9', t);
    expect(now).toMatchObject({ key: '192.0.2.9', cost: 2, decision: { allowed: true, remaining: 0 } });
    expect(t.headers.RateLimit).toMatch(/^"rn";r=0;t=\d+$/);
    const denied = plan.begin({}, '192.0.2.9', t);
    expect(denied).toMatchObject({ decision: { allowed: false, remaining: 0 } });
    expect(Number(t.headers['Retry-After'])).toBeGreaterThanOrEqual(1);
    expect(plan.begin({}, undefined, t)).toBe('no-client');
    // Same counts as check(): the async path sees what the sync one spent.
    expect(await plan.check({}, '192.0.2.9', t)).toMatchObject({ decision: { allowed: false } });
    await plan.limiter.close();

    // Functions that return plain values: still at once, each called once per request.
    const calls = { skip: 0, key: 0, cost: 0 };
    const keyed = new RequestLimiter<Req>({
      limit: '5/min',
      name: 'rk',
      store: new MemoryStore(),
      skip: (req) => {
        calls.skip++;
        return req.internal === true;
      },
      key: (req) => {
        calls.key++;
        return `user:${req.user}`;
      },
      cost: (req) => {
        calls.cost++;
        return req.cost ?? 1;
      },
    });
    const sync = keyed.begin({ user: 'ann', cost: 3 }, '192.0.2.9', target());
    expect(sync).toMatchObject({ key: 'user:ann', cost: 3, decision: { allowed: true, remaining: 2 } });
    expect(keyed.begin({ internal: true }, '192.0.2.9', target())).toBe('skip');
    expect(calls).toEqual({ skip: 2, key: 1, cost: 1 });
    expect(() => keyed.begin({ user: 'ann', cost: 1.5 }, '192.0.2.9', target())).toThrow(
      expect.objectContaining({ code: 'FLOODGATE_INVALID_COST' }),
    );
    expect((await keyed.limiter.peek('user:ann')).remaining).toBe(2);
    await keyed.limiter.close();

    // A function that returns a promise: the rest follows it, each function still called once.
    const later = { skip: 0, key: 0, cost: 0 };
    const asyncKeyed = new RequestLimiter<Req>({
      limit: '5/min',
      name: 'ra2',
      store: new MemoryStore(),
      skip: (req) => {
        later.skip++;
        return req.internal === true;
      },
      key: async (req) => {
        later.key++;
        return `user:${req.user}`;
      },
      cost: (req) => {
        later.cost++;
        return req.cost ?? 1;
      },
    });
    const pending = asyncKeyed.begin({ user: 'bo', cost: 2 }, '192.0.2.9', target());
    expect(pending).toBeInstanceOf(Promise);
    expect(later).toEqual({ skip: 1, key: 1, cost: 0 });
    expect(await pending).toMatchObject({
      key: 'user:bo',
      cost: 2,
      decision: { allowed: true, remaining: 3 },
    });
    expect(later).toEqual({ skip: 1, key: 1, cost: 1 });
    await asyncKeyed.limiter.close();
    const emptyKey = new RequestLimiter<Req>({ limit: '5/min', name: 'ra3', key: async () => '' });
    await expect(emptyKey.begin({}, '192.0.2.9', target())).rejects.toMatchObject({
      code: 'FLOODGATE_INVALID_KEY',
    });
    await emptyKey.limiter.close();

    const remote = new RequestLimiter<Req>({
      limit: '2/min',
      name: 'rs',
      store: failingStore(),
      skipOnError: true,
    });
    const fromStore = remote.begin({}, '192.0.2.9', target());
    expect(fromStore).toBeInstanceOf(Promise);
    expect(await fromStore).toMatchObject({
      key: '192.0.2.9',
      decision: { allowed: true, degraded: 'open' },
    });
    await remote.limiter.close();
  });

  it("returns 'no-client' for a missing address and 'skip' when skip says so", async () => {
    const plan = new RequestLimiter<Req>({
      limit: '2/min',
      name: 'rb',
      skip: (req) => req.internal === true,
    });
    const t = target();
    expect(await plan.check({}, undefined, t)).toBe('no-client');
    expect(await plan.check({}, '', t)).toBe('no-client');
    expect(await plan.check({ internal: true }, undefined, t)).toBe('skip');
    expect(t.headers).toEqual({});
    expect(plan.unknownClient.status).toBe(500);
    await plan.limiter.close();
  });

  it('uses async key and cost functions and rejects an empty key', async () => {
    const plan = new RequestLimiter<Req>({
      limit: '10/min',
      name: 'rc',
      key: async (req) => req.user ?? '',
      cost: async (req) => req.cost ?? 1,
    });
    expect(await plan.check({ user: 'u1', cost: 4 }, undefined, target())).toMatchObject({
      key: 'u1',
      cost: 4,
      decision: { remaining: 6 },
    });
    await expect(plan.check({}, '192.0.2.1', target())).rejects.toThrowError(/FLOODGATE_INVALID_KEY/);
    await expect(plan.check({ user: 'u1', cost: -1 }, undefined, target())).rejects.toThrowError(
      /FLOODGATE_INVALID_COST/,
    );
    await plan.limiter.close();
  });

  it('settle refunds successes or failures as configured, and only admitted, counted requests', async () => {
    const plan = new RequestLimiter<Req>({ limit: '3/min', name: 'rd', skipSuccessfulRequests: true });
    const admit = async () => {
      const result = await plan.check({}, '192.0.2.9', target());
      if (typeof result === 'string') throw new Error(result);
      return result;
    };
    plan.settle(await admit(), 200, true); // refunded
    plan.settle(await admit(), 404, true); // counted
    plan.settle(await admit(), 200, false); // client went away: a failure, counted
    await new Promise((resolve) => setImmediate(resolve));
    expect((await plan.limiter.peek('192.0.2.9')).remaining).toBe(1);
    const last = await admit();
    const denied = await admit();
    expect(denied.decision.allowed).toBe(false);
    plan.settle(denied, 200, true); // a denial consumed nothing: nothing to give back
    plan.settle(last, 500, true);
    await new Promise((resolve) => setImmediate(resolve));
    expect((await plan.limiter.peek('192.0.2.9')).remaining).toBe(0);
    await plan.limiter.close();
  });

  it('answers 503 for a failed store, the problem body otherwise, and caches bodies per violated set', async () => {
    const down = new RequestLimiter<Req>({
      limit: '2/min',
      name: 're',
      store: failingStore(),
      breaker: false,
    });
    const t = target();
    const result = await down.check({}, '192.0.2.1', t);
    if (typeof result === 'string') throw new Error(result);
    expect(result.decision.degraded).toBe('closed');
    expect(t.headers).toEqual({ 'Retry-After': '1' });
    expect(down.answer(result.decision).status).toBe(503);
    expect(down.usesOnLimit(result.decision)).toBe(false);

    const two = new RequestLimiter<Req>({ limit: ['1/s', '5/min'], name: undefined, prefix: 'rf:' });
    await two.check({}, '192.0.2.2', target());
    const denied = await two.check({}, '192.0.2.2', target());
    if (typeof denied === 'string') throw new Error(denied);
    const answer = two.answer(denied.decision);
    expect(answer).toMatchObject({ status: 429, contentType: 'application/problem+json' });
    expect(JSON.parse(answer.body)['violated-policies']).toEqual(['1-in-1s']);
    expect(two.answer(denied.decision)).toBe(answer);
    await Promise.all([down.limiter.close(), two.limiter.close()]);
  });

  it('events passes the Limiter event hooks, onLimit included, beside the adapter onLimit', async () => {
    const limits: unknown[] = [];
    const errors: unknown[] = [];
    const degraded: unknown[] = [];
    const answer = () => {};
    const plan = new RequestLimiter<Req, () => void>({
      limit: '1/min',
      name: 'rg',
      onLimit: answer,
      events: { onLimit: (event) => limits.push(event) },
    });
    expect(plan.onLimit).toBe(answer);
    await plan.check({}, '192.0.2.3', target());
    expect(limits).toEqual([]);
    const denied = await plan.check({}, '192.0.2.3', target());
    if (typeof denied === 'string') throw new Error(denied);
    expect(limits).toEqual([{ key: '192.0.2.3', decision: denied.decision }]);
    expect((limits[0] as { decision: unknown }).decision).toBe(denied.decision);

    const down = new RequestLimiter<Req>({
      limit: '1/min',
      name: 'rh',
      store: failingStore(),
      breaker: false,
      onDegraded: (event) => degraded.push(event.mode),
      events: {
        onStoreError: (event) => errors.push([event.operation, event.key]),
        onLimit: (e) => limits.push(e),
      },
    });
    const failed = await down.check({}, '192.0.2.4', target());
    expect(failed).toMatchObject({ decision: { degraded: 'closed', allowed: false } });
    expect(errors).toEqual([['consume', '192.0.2.4']]);
    expect(degraded).toEqual(['closed']);
    expect(limits).toHaveLength(1); // a failed store's 503 is not a limit
    await Promise.all([plan.limiter.close(), down.limiter.close()]);
  });

  it('rejects events that are not an object of known hooks, or a hook given twice', () => {
    const hook = () => {};
    expect(() => new RequestLimiter({ limit: '1/min', events: hook as never })).toThrowError(
      /FLOODGATE_INVALID_OPTION: rateLimit\(\): events .* must be an object of event hooks/,
    );
    expect(() => new RequestLimiter({ limit: '1/min', events: { onLimt: hook } as never })).toThrowError(
      /FLOODGATE_UNKNOWN_OPTION: rateLimit\(\) events has no option "onLimt"; did you mean "onLimit"\?/,
    );
    expect(
      () => new RequestLimiter({ limit: '1/min', onStoreError: hook, events: { onStoreError: hook } }),
    ).toThrowError(/onStoreError is given both at the top level and in events/);
    expect(() => new RequestLimiter({ limit: '1/min', events: { onLimit: 'log' as never } })).toThrowError(
      /FLOODGATE_INVALID_OPTION: onLimit "log" must be a function/,
    );
  });
});
