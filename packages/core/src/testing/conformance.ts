/**
 * The store conformance suite: the same cases for every Store (memory, SQLite, Redis and third-party
 * stores). Call it from a vitest file:
 *
 *   import { describeStoreConformance } from '@floodgate/core/testing';
 *   describeStoreConformance({ name: 'my store', create: (clock) => new MyStore({ clock }) });
 *
 * The store must take its time from the given clock so the suite can drive time deterministically.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALGORITHM_NAMES } from '../algorithms/index.js';
import { type LimitOption, parsePolicies } from '../rate.js';
import type { AlgorithmName, Clock, Policy, PolicyDecision, Store } from '../types.js';
import { TRACE_VECTORS } from './vectors.js';

export interface StoreConformanceOptions {
  /** Shown in the test names. */
  name: string;
  /** A store whose clock is `clock` (ms since the epoch). Called once per suite. */
  create(clock: Clock): Store | Promise<Store>;
  /** Tear down after the suite. @default store.close() */
  destroy?(store: Store): Promise<void>;
  /** Concurrent callers in the exactness case. @default 200 */
  concurrency?: number;
}

/** A clock the suite moves by hand. Starts at a day boundary so aligned windows start at 0. */
export class TestClock {
  private time: number;
  constructor(readonly origin = 1_728_000_000_000) {
    this.time = origin;
  }
  readonly now: Clock = () => this.time;
  /** Set the time to `origin + ms`. */
  at(ms: number): void {
    this.time = this.origin + ms;
  }
}

const EXACT_ALGORITHMS: readonly AlgorithmName[] = [
  'fixed-window',
  'sliding-log',
  'token-bucket',
  'leaky-bucket',
  'gcra',
];

/** Policies under a prefix of their own, so suites sharing a backend never see each other's keys. */
export function policiesFor(
  limit: LimitOption,
  prefix: string,
  extra: { algorithm?: AlgorithmName; burst?: number } = {},
): Policy[] {
  return parsePolicies(limit, { prefix, ...extra });
}

function pick(d: PolicyDecision) {
  return { allowed: d.allowed, remaining: d.remaining, resetMs: d.resetMs, retryAfterMs: d.retryAfterMs };
}

export function describeStoreConformance(options: StoreConformanceOptions): void {
  const clock = new TestClock();
  const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  let store: Store;
  let counter = 0;
  /** A fresh prefix per case: cases never share state, even on a shared server. */
  const prefix = () => `fgc-${run}-${++counter}:`;

  describe(`store conformance: ${options.name}`, () => {
    beforeAll(async () => {
      store = await options.create(clock.now);
    });
    afterAll(async () => {
      if (!store) return;
      const removed = store.clear(`fgc-${run}-`);
      await removed;
      await (options.destroy ? options.destroy(store) : store.close());
    });

    describe('trace vectors', () => {
      for (const vector of TRACE_VECTORS) {
        it(vector.title, async () => {
          const policies = policiesFor(
            { limit: vector.limit, window: vector.windowMs, burst: vector.burst },
            prefix(),
            {
              algorithm: vector.algorithm,
            },
          );
          for (const step of vector.steps) {
            clock.at(step.at);
            const [decision] = await store.consume('trace', policies, step.cost);
            expect({ at: step.at, cost: step.cost, ...pick(decision) }).toEqual({
              at: step.at,
              cost: step.cost,
              allowed: step.allowed,
              remaining: step.remaining,
              resetMs: step.resetMs,
              retryAfterMs: step.retryAfterMs,
            });
          }
        });
      }
    });

    describe('every algorithm', () => {
      for (const algorithm of ALGORITHM_NAMES) {
        it(`${algorithm}: retrying after retryAfterMs passes, 1 ms earlier fails`, async () => {
          const policies = policiesFor('3/10s', prefix(), { algorithm });
          clock.at(10_000);
          for (let i = 0; i < 3; i++) expect((await store.consume('k', policies, 1))[0].allowed).toBe(true);
          clock.at(10_250);
          const [denied] = await store.consume('k', policies, 1);
          expect(denied.allowed).toBe(false);
          expect(denied.retryAfterMs).toBeGreaterThan(1);
          clock.at(10_250 + denied.retryAfterMs - 1);
          expect((await store.peek('k', policies))[0].allowed).toBe(false);
          expect((await store.consume('k', policies, 1))[0].allowed).toBe(false);
          clock.at(10_250 + denied.retryAfterMs);
          expect((await store.peek('k', policies))[0].allowed).toBe(true);
          expect((await store.consume('k', policies, 1))[0].allowed).toBe(true);
        });

        it(`${algorithm}: peek reports without consuming`, async () => {
          const policies = policiesFor('4/1m', prefix(), { algorithm });
          clock.at(60_000);
          await store.consume('p', policies, 1);
          const first = await store.peek('p', policies);
          const second = await store.peek('p', policies);
          expect(second).toEqual(first);
          expect(first[0]).toMatchObject({ allowed: true, remaining: 3, limit: 4, retryAfterMs: 0 });
          expect((await store.consume('p', policies, 3))[0]).toMatchObject({ allowed: true, remaining: 0 });
          expect((await store.peek('p', policies))[0]).toMatchObject({ allowed: false, remaining: 0 });
          expect((await store.peek('p', policies))[0].retryAfterMs).toBeGreaterThan(0);
        });

        it(`${algorithm}: a key never seen peeks as full`, async () => {
          const policies = policiesFor('7/1h', prefix(), { algorithm });
          clock.at(0);
          expect((await store.peek('nobody', policies))[0]).toEqual({
            policy: '7-in-1h',
            limit: 7,
            windowMs: 3_600_000,
            allowed: true,
            remaining: 7,
            resetMs: 0,
            retryAfterMs: 0,
          });
        });

        it(`${algorithm}: a refund (negative cost) gives units back`, async () => {
          const policies = policiesFor('5/1h', prefix(), { algorithm });
          clock.at(0);
          expect((await store.consume('r', policies, 5))[0].remaining).toBe(0);
          expect((await store.consume('r', policies, 1))[0].allowed).toBe(false);
          expect((await store.consume('r', policies, -2))[0]).toMatchObject({ allowed: true, remaining: 2 });
          expect((await store.consume('r', policies, 2))[0]).toMatchObject({ allowed: true, remaining: 0 });
          expect((await store.consume('r', policies, -100))[0]).toMatchObject({
            allowed: true,
            remaining: 5,
          });
        });

        it(`${algorithm}: state expires by itself once it no longer matters`, async () => {
          const policies = policiesFor('2/1s', prefix(), { algorithm });
          clock.at(100_000);
          const [decision] = await store.consume('e', policies, 2);
          expect(decision.resetMs).toBeGreaterThan(0);
          clock.at(100_000 + 2 * 1000 + 1);
          expect((await store.consume('e', policies, 2))[0]).toMatchObject({ allowed: true, remaining: 0 });
        });
      }
    });

    describe('several policies in one call', () => {
      it('admits only if every policy admits, and a denial consumes nothing', async () => {
        const policies = policiesFor(['2/s', '3/1m'], prefix(), { algorithm: 'fixed-window' });
        clock.at(0);
        expect((await store.consume('m', policies, 1)).map((d) => d.allowed)).toEqual([true, true]);
        expect((await store.consume('m', policies, 1)).map((d) => d.remaining)).toEqual([0, 1]);
        const denied = await store.consume('m', policies, 1);
        expect(denied.map(pick)).toEqual([
          { allowed: false, remaining: 0, resetMs: 1000, retryAfterMs: 1000 },
          { allowed: true, remaining: 1, resetMs: 60_000, retryAfterMs: 0 },
        ]);
        clock.at(1000);
        // The per-minute policy still has 1: the denial above took nothing from it.
        expect((await store.consume('m', policies, 1)).map(pick)).toEqual([
          { allowed: true, remaining: 1, resetMs: 1000, retryAfterMs: 0 },
          { allowed: true, remaining: 0, resetMs: 59_000, retryAfterMs: 0 },
        ]);
        const minuteDenied = await store.consume('m', policies, 1);
        expect(minuteDenied.map((d) => d.allowed)).toEqual([true, false]);
        expect(minuteDenied[0].remaining).toBe(1);
        expect(minuteDenied[1].retryAfterMs).toBe(59_000);
      });

      it('mixes algorithms in one call', async () => {
        const prefixText = prefix();
        const policies = [
          ...policiesFor({ limit: 3, window: '1s', algorithm: 'gcra', name: 'burst' }, prefixText),
          ...policiesFor({ limit: 5, window: '1m', algorithm: 'sliding-log', name: 'minute' }, prefixText),
        ];
        clock.at(0);
        const results: boolean[] = [];
        for (let i = 0; i < 4; i++)
          results.push((await store.consume('x', policies, 1)).every((d) => d.allowed));
        expect(results).toEqual([true, true, true, false]);
        clock.at(1000);
        const after = await store.consume('x', policies, 2);
        expect(after.map((d) => [d.policy, d.allowed, d.remaining])).toEqual([
          ['burst', true, 1],
          ['minute', true, 0],
        ]);
      });
    });

    describe('keys and buckets', () => {
      it('keeps keys and buckets apart', async () => {
        const a = policiesFor('1/1m', prefix());
        const b = policiesFor('1/1m', prefix());
        clock.at(0);
        expect((await store.consume('u1', a, 1))[0].allowed).toBe(true);
        expect((await store.consume('u1', a, 1))[0].allowed).toBe(false);
        expect((await store.consume('u2', a, 1))[0].allowed).toBe(true);
        expect((await store.consume('u1', b, 1))[0].allowed).toBe(true);
      });

      it('takes any key text: unicode, braces, control characters, 10 kB', async () => {
        const policies = policiesFor('1/1m', prefix());
        clock.at(0);
        const keys = [
          'ключ-🔑',
          '{slot}',
          'a}b{c',
          'line\r\nbreak\u0000nul',
          'x'.repeat(10_000),
          'x'.repeat(10_001),
          '',
        ];
        for (const key of keys) expect((await store.consume(key, policies, 1))[0].allowed).toBe(true);
        for (const key of keys) expect((await store.consume(key, policies, 1))[0].allowed).toBe(false);
      });

      it('reset forgets a key in the given buckets only', async () => {
        const text = prefix();
        const policies = policiesFor(['1/1m', '10/1h'], text);
        clock.at(0);
        await store.consume('gone', policies, 1);
        await store.consume('kept', policies, 1);
        await store.reset('gone', [policies[0].bucket]);
        expect((await store.peek('gone', policies)).map((d) => d.remaining)).toEqual([1, 9]);
        await store.reset(
          'gone',
          policies.map((p) => p.bucket),
        );
        expect((await store.peek('gone', policies)).map((d) => d.remaining)).toEqual([1, 10]);
        expect((await store.peek('kept', policies)).map((d) => d.remaining)).toEqual([0, 9]);
      });

      it('lists live entries and clears by prefix', async () => {
        const mine = prefix();
        const other = prefix();
        const policies = policiesFor('5/1m', mine, { algorithm: 'fixed-window' });
        const others = policiesFor('5/1m', other);
        clock.at(0);
        await store.consume('a', policies, 2);
        await store.consume('b', policies, 1);
        await store.consume('a', others, 1);
        const listed: { key: string; bucket: string; state: readonly number[] }[] = [];
        for await (const entry of store.entries(mine)) listed.push(entry);
        listed.sort((x, y) => x.key.localeCompare(y.key));
        expect(listed.map((e) => [e.bucket, e.key])).toEqual([
          [policies[0].bucket, 'a'],
          [policies[0].bucket, 'b'],
        ]);
        expect(listed[0].state.slice(0, 2)).toEqual([clock.origin, 2]);
        expect(await store.clear(mine)).toBe(2);
        const left: string[] = [];
        for await (const entry of store.entries(mine)) left.push(entry.key);
        expect(left).toEqual([]);
        expect((await store.peek('a', others))[0].remaining).toBe(4);
      });
    });

    describe('concurrency', () => {
      for (const algorithm of EXACT_ALGORITHMS) {
        it(`${algorithm}: concurrent callers on one key get exactly the limit`, async () => {
          const callers = options.concurrency ?? 200;
          const limit = Math.floor(callers / 4);
          const policies = policiesFor({ limit, window: '1h' }, prefix(), { algorithm });
          clock.at(0);
          const results = await Promise.all(
            Array.from({ length: callers }, () => store.consume('hot', policies, 1)),
          );
          const admitted = results.filter((r) => r[0].allowed).length;
          expect(admitted).toBe(limit);
          const remainings = results.filter((r) => r[0].allowed).map((r) => r[0].remaining);
          expect(new Set(remainings).size).toBe(limit);
        });
      }
    });

    it('reports health', async () => {
      const health = await store.health();
      expect(health.ok).toBe(true);
      expect(health.latencyMs).toBeGreaterThanOrEqual(0);
    });
  });
}
