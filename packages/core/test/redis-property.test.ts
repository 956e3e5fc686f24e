/**
 * The Lua scripts against the TypeScript algorithms: random traces (times that jump forward, back and
 * by fractions; costs, refunds and peeks; several policies of mixed algorithms; two client keys) run
 * through evaluate() and peekPolicy() on the TS steps and through a RedisStore on the same clock.
 * Every decision must be identical, field for field.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALGORITHM_NAMES } from '../src/algorithms/index.js';
import { evaluate, peekPolicy } from '../src/evaluate.js';
import { parsePolicies } from '../src/rate.js';
import { RedisStore } from '../src/stores/redis/index.js';
import type { AlgorithmName, AlgorithmState, Policy, PolicyDecision } from '../src/types.js';

const RUN = `fgprop-${process.pid}-${Date.now().toString(36)}:`;
const BUCKET_ALGORITHMS: readonly AlgorithmName[] = ['token-bucket', 'leaky-bucket', 'gcra'];

let time = 0;
const clock = () => time;
/**
 * Two stores on the same clock. With a caller's clock the script stores its own format (a TTL with
 * a real-time floor). The other is told to store as it does with Redis `TIME` (floor 0: PXAT at the
 * state's expiry, SETRANGE in place, and the one-policy fast path that goes with them); its clock
 * runs a day ahead of real time so that no PXAT lies in the past.
 */
const stores: Record<string, { store: RedisStore; shift: number }> = {};

beforeAll(() => {
  stores['caller-clock format'] = {
    store: new RedisStore({ url: 'redis://127.0.0.1:6379/0', clock }),
    shift: 0,
  };
  const redisTime = new RedisStore({ url: 'redis://127.0.0.1:6379/0', clock });
  (redisTime as unknown as { floorTtl: string }).floorTtl = '0';
  stores['Redis-time format'] = { store: redisTime, shift: Date.now() + 86_400_000 - 1.7e12 };
});
afterAll(async () => {
  for (const { store } of Object.values(stores)) {
    await store.clear(RUN);
    await store.close();
  }
});

const policyArb = fc.record({
  algorithm: fc.constantFrom(...ALGORITHM_NAMES),
  limit: fc.oneof(fc.integer({ min: 1, max: 12 }), fc.constantFrom(100, 1000, 7919)),
  window: fc.oneof(
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 50 }) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 5000 }) },
    { weight: 1, arbitrary: fc.constantFrom(1000, 60_000, 3_600_000) },
  ),
  burst: fc.option(fc.integer({ min: 1, max: 30 }), { nil: undefined }),
});

const opArb = fc.record({
  // Mostly forward, sometimes by fractions of a ms, sometimes back (a clock that went back).
  dt: fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 60 }) },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 2500 }) },
    { weight: 2, arbitrary: fc.double({ min: 0, max: 50, noNaN: true }) },
    { weight: 1, arbitrary: fc.integer({ min: -100, max: 0 }) },
    { weight: 1, arbitrary: fc.integer({ min: -3000, max: 0 }) },
  ),
  cost: fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: 4 }) },
    { weight: 2, arbitrary: fc.integer({ min: -3, max: 30 }) },
  ),
  peek: fc.boolean().map((b) => b && Math.random() < 0.4),
  key: fc.constantFrom('a', 'b'),
});

const traceArb = fc.record({
  policies: fc.array(policyArb, { minLength: 1, maxLength: 3 }),
  start: fc.oneof(fc.constant(1_728_000_000_000), fc.double({ min: 1.7e12, max: 1.8e12, noNaN: true })),
  ops: fc.array(opArb, { minLength: 1, maxLength: 60 }),
  batched: fc.boolean(),
});

type PolicySpec = { algorithm: AlgorithmName; limit: number; window: number; burst: number | undefined };
let runs = 0;

/**
 * The reference: evaluate() and peekPolicy() over a map of states. An entry is gone once the clock
 * reaches its expiry (now + ttlMs), and forgotten when read then, like the script does.
 */
class Reference {
  private readonly entries = new Map<string, { state: AlgorithmState; expiresAt: number }>();

  private read(policy: Policy, key: string, now: number): AlgorithmState | undefined {
    const id = `${policy.bucket}\u0000${key}`;
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.entries.delete(id);
      return undefined;
    }
    return entry.state;
  }

  consume(key: string, policies: readonly Policy[], now: number, cost: number): PolicyDecision[] {
    const states = policies.map((policy) => this.read(policy, key, now));
    const result = evaluate(policies, states, now, cost);
    // An admission writes every policy; a denial writes only states the clock went back past
    // (re-dated to now, nothing consumed), as every store does.
    policies.forEach((policy, i) => {
      const step = result.steps[i];
      if (result.allowed || step.rewound) {
        this.entries.set(`${policy.bucket}\u0000${key}`, { state: step.state, expiresAt: now + step.ttlMs });
      }
    });
    return result.decisions;
  }

  peek(key: string, policies: readonly Policy[], now: number): PolicyDecision[] {
    return policies.map((policy) => peekPolicy(policy, this.read(policy, key, now), now));
  }
}

function toPolicies(specs: PolicySpec[]): Policy[] {
  const prefix = `${RUN}${++runs}:`;
  return specs.flatMap((spec, i) =>
    parsePolicies(
      {
        limit: spec.limit,
        window: spec.window,
        algorithm: spec.algorithm,
        name: `p${i}`,
        ...(BUCKET_ALGORITHMS.includes(spec.algorithm) && spec.burst !== undefined
          ? { burst: spec.burst }
          : {}),
      },
      { prefix },
    ),
  );
}

describe.each(['caller-clock format', 'Redis-time format'])(
  'Lua scripts agree with the TypeScript algorithms (%s)',
  (format) => {
    it('gives identical decisions on random traces (sequential and batched)', async () => {
      const { store: redis, shift } = stores[format];
      await fc.assert(
        fc.asyncProperty(traceArb, async (trace) => {
          const policies = toPolicies(trace.policies);
          const reference = new Reference();
          time = trace.start + shift;
          const expected: PolicyDecision[][] = [];
          const actual: Promise<readonly PolicyDecision[]>[] = [];
          const calls = redis.stats.calls;
          for (const op of trace.ops) {
            time += op.dt;
            expected.push(
              op.peek
                ? reference.peek(op.key, policies, time)
                : reference.consume(op.key, policies, time, op.cost),
            );
            const pending = op.peek ? redis.peek(op.key, policies) : redis.consume(op.key, policies, op.cost);
            // Batched: every op is queued before any is sent, so they share script calls (in order).
            if (!trace.batched) await pending;
            actual.push(pending);
          }
          const got = await Promise.all(actual);
          expect(got).toEqual(expected);
          // A flush with nothing in flight goes as one call up to 8 checks, else in halves (at most 64 each).
          const n = trace.ops.length;
          const size = n <= 8 ? n : Math.min(64, Math.ceil(n / 2));
          if (trace.batched) expect(redis.stats.calls - calls).toBe(Math.ceil(n / size));
        }),
        { numRuns: 300 },
      );
    }, 120_000);

    it('agrees on fractional-millisecond GCRA and bucket boundaries at high rates', async () => {
      const { store: redis, shift } = stores[format];
      for (const algorithm of BUCKET_ALGORITHMS) {
        const policies = toPolicies([{ algorithm, limit: 7919, window: 1000, burst: 3 }]);
        const reference = new Reference();
        time = 1_728_000_000_000 + shift;
        const expected: PolicyDecision[][] = [];
        const actual: Promise<readonly PolicyDecision[]>[] = [];
        for (let i = 0; i < 400; i++) {
          time += 0.0631 * (i % 3);
          expected.push(reference.consume('hot', policies, time, 1));
          actual.push(redis.consume('hot', policies, 1));
        }
        const got = await Promise.all(actual);
        expect(got).toEqual(expected);
        // Both admitted some and denied some: the boundary was exercised.
        expect(new Set(got.map((d) => d[0].allowed)).size).toBe(2);
      }
    });
  },
);
