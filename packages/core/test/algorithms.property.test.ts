/**
 * Property tests: every algorithm against a reference model written from its definition, in exact
 * integer arithmetic (times are whole ms, counts are scaled by the window so no fraction appears).
 * The references decide admission, remaining and reset; the wait is checked by brute force: the
 * reference must admit at now + retryAfterMs and refuse at now + retryAfterMs - 1.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ALGORITHMS, type ReusableStepResult } from '../src/algorithms/index.js';
import { parsePolicies } from '../src/rate.js';
import { MemoryStore } from '../src/stores/memory.js';
import type { AlgorithmName, AlgorithmState, Policy } from '../src/types.js';

const RUNS = 1000;
const ORIGIN = 1_728_000_000_000;

/** A reference limiter: clone-able, advanced only by `consume`. */
interface Reference {
  admits(now: number, cost: number): boolean;
  consume(now: number, cost: number): { allowed: boolean; remaining: number; resetMs: number };
  clone(): Reference;
}

class FixedWindowRef implements Reference {
  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private start = Number.NaN,
    private count = 0,
  ) {}
  private roll(now: number) {
    if (Number.isNaN(this.start) || now >= this.start + this.windowMs) {
      this.start = now;
      this.count = 0;
    }
  }
  admits(now: number, cost: number) {
    return this.clone().consume(now, cost).allowed;
  }
  consume(now: number, cost: number) {
    const before = { start: this.start, count: this.count };
    this.roll(now);
    const allowed = this.count + cost <= this.limit;
    if (allowed) this.count += cost;
    const resetMs = this.count > 0 || !allowed ? this.start + this.windowMs - now : 0;
    const result = { allowed, remaining: this.limit - this.count, resetMs };
    if (!allowed) Object.assign(this, before);
    return result;
  }
  clone() {
    return new FixedWindowRef(this.limit, this.windowMs, this.start, this.count);
  }
}

class SlidingWindowRef implements Reference {
  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private counts = new Map<number, number>(),
  ) {}
  /** Estimate x windowMs, exactly. */
  private scaled(now: number) {
    const start = Math.floor(now / this.windowMs) * this.windowMs;
    const previous = this.counts.get(start - this.windowMs) ?? 0;
    const current = this.counts.get(start) ?? 0;
    return {
      start,
      previous,
      current,
      used: previous * (this.windowMs - (now - start)) + current * this.windowMs,
    };
  }
  admits(now: number, cost: number) {
    return this.scaled(now).used + cost * this.windowMs <= this.limit * this.windowMs;
  }
  consume(now: number, cost: number) {
    const { start, previous, current, used } = this.scaled(now);
    const W = this.windowMs;
    const allowed = used + cost * W <= this.limit * W;
    const counted = allowed ? current + cost : current;
    if (allowed) this.counts.set(start, counted);
    const left = this.limit * W - (allowed ? used + cost * W : used);
    const resetMs = counted > 0 ? start + 2 * W - now : previous > 0 ? start + W - now : 0;
    return { allowed, remaining: Math.max(0, Math.floor(left / W)), resetMs };
  }
  clone() {
    return new SlidingWindowRef(this.limit, this.windowMs, new Map(this.counts));
  }
}

class SlidingLogRef implements Reference {
  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private log: [number, number][] = [],
  ) {}
  private used(now: number) {
    return this.log.filter(([t]) => t > now - this.windowMs).reduce((sum, [, c]) => sum + c, 0);
  }
  admits(now: number, cost: number) {
    return this.used(now) + cost <= this.limit;
  }
  consume(now: number, cost: number) {
    const allowed = this.admits(now, cost);
    if (allowed && cost > 0) this.log.push([now, cost]);
    const live = this.log.filter(([t]) => t > now - this.windowMs);
    const resetMs = live.length > 0 ? live[live.length - 1][0] + this.windowMs - now : 0;
    return { allowed, remaining: this.limit - this.used(now), resetMs };
  }
  clone() {
    return new SlidingLogRef(this.limit, this.windowMs, [...this.log]);
  }
}

/** Token bucket in units of 1/windowMs token: refilling `elapsed` ms adds elapsed x limit. */
class BucketRef implements Reference {
  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly burst: number,
    private scaledTokens = burst * windowMs,
    private last = Number.NaN,
  ) {}
  private refill(now: number) {
    const full = this.burst * this.windowMs;
    this.scaledTokens = Number.isNaN(this.last)
      ? full
      : Math.min(full, this.scaledTokens + (now - this.last) * this.limit);
    this.last = now;
  }
  admits(now: number, cost: number) {
    const copy = this.clone() as BucketRef;
    copy.refill(now);
    return copy.scaledTokens >= cost * this.windowMs;
  }
  consume(now: number, cost: number) {
    this.refill(now);
    const allowed = this.scaledTokens >= cost * this.windowMs;
    if (allowed) this.scaledTokens -= cost * this.windowMs;
    const deficit = this.burst * this.windowMs - this.scaledTokens;
    return {
      allowed,
      remaining: Math.floor(this.scaledTokens / this.windowMs),
      resetMs: Math.ceil(deficit / this.limit),
    };
  }
  clone() {
    return new BucketRef(this.limit, this.windowMs, this.burst, this.scaledTokens, this.last);
  }
}

function reference(policy: Policy): Reference {
  switch (policy.algorithm) {
    case 'fixed-window':
      return new FixedWindowRef(policy.limit, policy.windowMs);
    case 'sliding-window':
      return new SlidingWindowRef(policy.limit, policy.windowMs);
    case 'sliding-log':
      return new SlidingLogRef(policy.limit, policy.windowMs);
    default:
      return new BucketRef(policy.limit, policy.windowMs, policy.burst);
  }
}

/** The smallest whole wait >= 1 after which the reference admits `cost`, by trying every ms. */
function bruteForceWait(ref: Reference, now: number, cost: number, horizon: number): number {
  for (let wait = 1; wait <= horizon; wait++) if (ref.admits(now + wait, cost)) return wait;
  return Number.POSITIVE_INFINITY;
}

const traceArbitrary = fc.record({
  limit: fc.integer({ min: 1, max: 12 }),
  windowMs: fc.constantFrom(7, 10, 100, 333, 1000),
  burstExtra: fc.integer({ min: 0, max: 5 }),
  steps: fc.array(
    fc.record({ gap: fc.integer({ min: 0, max: 400 }), cost: fc.integer({ min: 0, max: 14 }) }),
    {
      minLength: 1,
      maxLength: 30,
    },
  ),
});

const BUCKETS: readonly AlgorithmName[] = ['token-bucket', 'leaky-bucket', 'gcra'];

const anyAlgorithm = fc.constantFrom(...(Object.keys(ALGORITHMS) as AlgorithmName[]));

/** Wall-clock steps of up to two hours back or forward, each with a cost of 0 to 6 (6 is above the tests' limit of 5). */
function clockJumps(maxLength: number) {
  return fc.array(
    fc.record({
      jump: fc.integer({ min: -7_200_000, max: 7_200_000 }),
      cost: fc.integer({ min: 0, max: 6 }),
    }),
    { minLength: 1, maxLength },
  );
}

describe('algorithms agree with their reference models', () => {
  for (const algorithm of Object.keys(ALGORITHMS) as AlgorithmName[]) {
    it(`${algorithm}: admission, remaining, reset and the exact wait (${RUNS} random traces)`, () => {
      fc.assert(
        fc.property(traceArbitrary, ({ limit, windowMs, burstExtra, steps }) => {
          const burst = BUCKETS.includes(algorithm) ? limit + burstExtra : undefined;
          const [policy] = parsePolicies({ limit, window: windowMs, algorithm, burst }, { prefix: '' });
          const ref = reference(policy);
          let state: AlgorithmState | undefined;
          let now = ORIGIN + Math.floor(Math.random() * 1000);
          for (const { gap, cost } of steps) {
            now += gap;
            const capacity = policy.burst;
            const expectedWait =
              cost > capacity
                ? undefined
                : bruteForceWait(ref.clone(), now, cost, 3 * windowMs * (capacity + 1));
            const expected = ref.consume(now, cost);
            const got = ALGORITHMS[algorithm].step(state, now, policy, cost);
            expect({ allowed: got.allowed, remaining: got.remaining, resetMs: got.resetMs }).toEqual(
              expected,
            );
            for (const n of [got.remaining, got.resetMs, got.retryAfterMs, got.ttlMs]) {
              expect(Number.isInteger(n) && n >= 0).toBe(true);
            }
            if (got.allowed) {
              expect(got.retryAfterMs).toBe(0);
              state = got.state;
            } else if (expectedWait !== undefined) {
              expect(got.retryAfterMs).toBe(expectedWait);
            }
          }
        }),
        { numRuns: RUNS },
      );
    });
  }

  it('token bucket, leaky bucket and GCRA make identical decisions on the same trace', () => {
    fc.assert(
      fc.property(traceArbitrary, ({ limit, windowMs, burstExtra, steps }) => {
        const policies = BUCKETS.map(
          (algorithm) =>
            parsePolicies(
              { limit, window: windowMs, algorithm, burst: limit + burstExtra },
              { prefix: '' },
            )[0],
        );
        const states: (AlgorithmState | undefined)[] = [undefined, undefined, undefined];
        let now = ORIGIN;
        for (const { gap, cost } of steps) {
          now += gap;
          const results = policies.map((policy, i) =>
            ALGORITHMS[policy.algorithm].step(states[i], now, policy, cost),
          );
          const summary = results.map((r) => [r.allowed, r.remaining, r.resetMs, r.retryAfterMs]);
          expect(summary[1]).toEqual(summary[0]);
          expect(summary[2]).toEqual(summary[0]);
          results.forEach((r, i) => {
            if (r.allowed) states[i] = r.state;
          });
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('a wall clock that jumps back or forward never gives negative, NaN or endless waits', () => {
    fc.assert(
      fc.property(anyAlgorithm, clockJumps(25), (algorithm, steps) => {
        const [policy] = parsePolicies({ limit: 5, window: '1m', algorithm }, { prefix: '' });
        let state: AlgorithmState | undefined;
        let now = ORIGIN;
        for (const { jump, cost } of steps) {
          now += jump;
          const got = ALGORITHMS[algorithm].step(state, now, policy, cost);
          for (const n of [got.remaining, got.resetMs, got.retryAfterMs, got.ttlMs]) {
            expect(Number.isInteger(n) && n >= 0).toBe(true);
          }
          // However the clock moved, a wait never exceeds two windows (the sliding window's worst case).
          expect(got.retryAfterMs).toBeLessThanOrEqual(2 * policy.windowMs);
          expect(got.resetMs).toBeLessThanOrEqual(2 * policy.windowMs);
          // As a store does: an admission, or a denial that re-dated a state from the future.
          if (got.allowed || got.rewound) state = got.state;
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('a step that overwrites a reused result', () => {
  it('returns exactly what a fresh step returns, on any trace, clock jumps included', () => {
    fc.assert(
      fc.property(
        anyAlgorithm,
        clockJumps(25),
        fc.integer({ min: 1, max: 20 }),
        (algorithm, steps, limit) => {
          const [policy] = parsePolicies({ limit, window: '1m', algorithm }, { prefix: '' });
          const step = ALGORITHMS[algorithm].step;
          const reused = step(undefined, 0, policy, 0) as ReusableStepResult;
          let state: AlgorithmState | undefined;
          let now = ORIGIN;
          for (const { jump, cost } of steps) {
            now += jump;
            const fresh = step(state, now, policy, cost);
            const got = step(state === undefined ? undefined : [...state], now, policy, cost, reused);
            // Fixed-size states overwrite the reused result; the sliding log's grows, so it makes its own.
            expect(got === reused).toBe(algorithm !== 'sliding-log');
            expect({ ...got, state: [...got.state] }).toEqual({ ...fresh, state: [...fresh.state] });
            if (fresh.allowed || fresh.rewound) state = fresh.state;
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('clock jumps through the memory store', () => {
  it('after any sequence of jumps, a denied call passes once its retryAfterMs has elapsed', () => {
    fc.assert(
      fc.property(anyAlgorithm, clockJumps(15), fc.integer({ min: 1, max: 5 }), (algorithm, steps, cost) => {
        let now = ORIGIN;
        const store = new MemoryStore({ clock: () => now, sweepIntervalMs: 0 });
        const policies = parsePolicies({ limit: 5, window: '1m', algorithm }, { prefix: '' });
        for (const step of steps) {
          now += step.jump;
          store.consumeSync('k', policies, step.cost);
        }
        let decision = store.consumeSync('k', policies, cost)[0];
        for (let i = 0; i < 10 && decision.allowed; i++) decision = store.consumeSync('k', policies, cost)[0];
        expect(decision.allowed).toBe(false);
        expect(decision.retryAfterMs).toBeLessThanOrEqual(2 * 60_000);
        now += decision.retryAfterMs;
        expect(store.consumeSync('k', policies, cost)[0].allowed).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('several policies through the memory store', () => {
  it('admit exactly when every reference admits, and a denial changes no reference', () => {
    const algorithms = Object.keys(ALGORITHMS) as AlgorithmName[];
    fc.assert(
      fc.property(
        fc.constantFrom(...algorithms),
        fc.constantFrom(...algorithms),
        traceArbitrary,
        (first, second, { limit, steps }) => {
          let now = ORIGIN;
          const store = new MemoryStore({ clock: () => now, sweepIntervalMs: 0 });
          const policies = [
            ...parsePolicies({ limit, window: 100, algorithm: first, name: 'short' }, { prefix: '' }),
            ...parsePolicies(
              { limit: limit * 3, window: 1000, algorithm: second, name: 'long' },
              { prefix: '' },
            ),
          ];
          const refs = policies.map(reference);
          for (const { gap, cost } of steps) {
            now += gap;
            const expectedAllowed = refs.every((ref) => ref.admits(now, cost));
            const decisions = store.consumeSync('key', policies, cost);
            expect(decisions.every((d) => d.allowed)).toBe(expectedAllowed);
            if (expectedAllowed) {
              refs.forEach((ref, i) => {
                expect(ref.consume(now, cost).remaining).toBe(decisions[i].remaining);
              });
            }
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});
