import { afterEach, describe, expect, it } from 'vitest';
import { ALGORITHM_NAMES } from '../src/algorithms/index.js';
import { FloodgateError } from '../src/errors.js';
import { Limiter } from '../src/limiter.js';
import { MemoryStore } from '../src/stores/memory.js';
import { createStore } from '../src/uri.js';

const ORIGIN = 1_728_000_000_000;
let now = ORIGIN;
const clock = () => now;
const limiters: Limiter[] = [];
function limiter(options: ConstructorParameters<typeof Limiter>[0]): Limiter {
  const made = new Limiter({ store: new MemoryStore({ clock, sweepIntervalMs: 0 }), ...options });
  limiters.push(made);
  return made;
}

afterEach(async () => {
  now = ORIGIN;
  for (const made of limiters.splice(0)) await made.close();
});

describe('Limiter decisions', () => {
  it('describes the most restrictive policy at the top and every policy in `policies`', async () => {
    const l = limiter({ limit: ['3/s', '5/1m'], algorithm: 'fixed-window', name: undefined });
    const first = await l.consume('k');
    expect(first).toEqual({
      allowed: true,
      limit: 3,
      remaining: 2,
      resetMs: 1000,
      retryAfterMs: 0,
      policy: '3-in-1s',
      policies: [
        {
          policy: '3-in-1s',
          limit: 3,
          windowMs: 1000,
          allowed: true,
          remaining: 2,
          resetMs: 1000,
          retryAfterMs: 0,
        },
        {
          policy: '5-in-1m',
          limit: 5,
          windowMs: 60_000,
          allowed: true,
          remaining: 4,
          resetMs: 60_000,
          retryAfterMs: 0,
        },
      ],
      degraded: false,
      exceedsLimit: false,
    });
    await l.consume('k', { cost: 2 });
    now += 1000;
    // 5-in-1m now has 2 left, 3-in-1s a fresh 3: the minute policy is the tighter one.
    const third = await l.consume('k');
    expect([third.policy, third.remaining]).toEqual(['5-in-1m', 1]);
    await l.consume('k');
    const denied = await l.consume('k');
    expect(denied).toMatchObject({ allowed: false, policy: '5-in-1m', remaining: 0, retryAfterMs: 59_000 });
    expect(denied.policies.map((p) => p.allowed)).toEqual([true, false]);
  });

  it('on several denials reports the longest wait, after which the call passes', async () => {
    const l = limiter({ limit: ['1/s', '1/1m'], algorithm: 'fixed-window' });
    await l.consume('k');
    const denied = await l.consume('k');
    expect(denied.policies.map((p) => p.retryAfterMs)).toEqual([1000, 60_000]);
    expect([denied.policy, denied.retryAfterMs]).toEqual(['1-in-1m', 60_000]);
    now += 60_000;
    expect((await l.consume('k')).allowed).toBe(true);
  });

  it('says when a cost can never pass', async () => {
    const l = limiter({ limit: 10, window: '1m', algorithm: 'gcra', burst: 4 });
    const d = await l.consume('k', { cost: 5 });
    expect(d).toMatchObject({ allowed: false, exceedsLimit: true, remaining: 4 });
    expect((await l.consume('k', { cost: 4 })).allowed).toBe(true);
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '2'])('rejects cost %s synchronously', (cost) => {
    const l = limiter({ limit: '5/s' });
    expect(() => l.consume('k', { cost: cost as number })).toThrowError(FloodgateError);
    expect(() => l.consume('k', { cost: cost as number })).toThrowError(
      /FLOODGATE_INVALID_COST: cost .* must be a whole number >= 0/,
    );
  });

  it('peek consumes nothing; reset forgets; refund gives back', async () => {
    const l = limiter({ limit: '3/1m' });
    await l.consume('k', { cost: 2 });
    expect((await l.peek('k')).remaining).toBe(1);
    expect((await l.peek('k')).remaining).toBe(1);
    expect((await l.refund('k')).remaining).toBe(2);
    await l.reset('k');
    expect((await l.peek('k')).remaining).toBe(3);
  });

  it('prefixes buckets: limiters with different prefixes on one store do not share counts', async () => {
    const store = new MemoryStore({ clock, sweepIntervalMs: 0 });
    const a = new Limiter({ limit: '1/1m', store, prefix: 'a:', name: 'p' });
    const b = new Limiter({ limit: '1/1m', store, prefix: 'b:', name: 'p' });
    const same = new Limiter({ limit: '1/1m', store, prefix: 'a:', name: 'p' });
    limiters.push(a, b, same);
    expect((await a.consume('k')).allowed).toBe(true);
    expect((await b.consume('k')).allowed).toBe(true);
    expect((await same.consume('k')).allowed).toBe(false);
    expect(a.policies[0].bucket).toBe('a:p:sw');
  });

  it('takes the prefix from a store URI unless given its own', () => {
    const fromUri = new Limiter({ limit: '1/s', store: 'memory://?prefix=app:', name: 'x' });
    const own = new Limiter({
      limit: '1/s',
      store: createStore('memory://?prefix=app:'),
      prefix: 'mine:',
      name: 'x',
    });
    limiters.push(fromUri, own);
    expect(fromUri.policies[0].bucket).toBe('app:x:sw');
    expect(own.policies[0].bucket).toBe('mine:x:sw');
  });

  it('warns once when two limiters share a defaulted bucket', async () => {
    const warnings: string[] = [];
    const listener = (warning: Error & { code?: string }) => {
      if (warning.code === 'FLOODGATE_SHARED_BUCKET') warnings.push(warning.message);
    };
    process.on('warning', listener);
    try {
      const first = new Limiter({ limit: '7/13m', prefix: 'warn-test:' });
      const second = new Limiter({ limit: '7/13m', prefix: 'warn-test:' });
      const named = new Limiter({ limit: '7/13m', prefix: 'warn-test:', name: 'login' });
      limiters.push(first, second, named);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/bucket "warn-test:7-in-13m:sw"/);
    } finally {
      process.off('warning', listener);
    }
  });

  it('throws FLOODGATE_CLOSED after close()', async () => {
    const l = limiter({ limit: '1/s' });
    await l.close();
    expect(() => l.consume('k')).toThrowError(/FLOODGATE_CLOSED/);
  });

  it('admits exactly the limit among 10,000 concurrent callers on one key', async () => {
    for (const algorithm of ALGORITHM_NAMES) {
      const l = limiter({ limit: 2500, window: '1h', algorithm, name: algorithm });
      const decisions = await Promise.all(Array.from({ length: 10_000 }, () => l.consume('hot')));
      expect([algorithm, decisions.filter((d) => d.allowed).length]).toEqual([algorithm, 2500]);
    }
  });
});
