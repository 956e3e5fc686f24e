/**
 * Limiter: policies + store + failure rules -> Decision. The one object adapters talk to.
 */
import { monotonicClock } from './clock.js';
import { storeFailureDecision, toDecision } from './decision.js';
import { assertKnownOptions, FloodgateError, show } from './errors.js';
import { type Duration, type LimitOption, parsePolicies } from './rate.js';
import { withDeadline } from './resilience/deadline.js';
import { MemoryStore } from './stores/memory.js';
import type { AlgorithmName, Decision, Policy, PolicyDecision, Store } from './types.js';
import { createStore } from './uri.js';

export interface LimiterOptions {
  /**
   * One policy or several, all checked in one atomic call: a rate text ("100/min", "5/15m"), a
   * number with `window`, a policy object `{ limit, window, algorithm, name, burst }`, or an array.
   */
  limit: LimitOption | number;
  /** Window for a numeric `limit` (ms or "1m"). */
  window?: Duration;
  /** Algorithm for every policy that does not name its own. @default 'sliding-window' */
  algorithm?: AlgorithmName;
  /** Capacity for token-bucket, leaky-bucket and gcra. @default limit */
  burst?: number;
  /** Name of the policy (single policy only). @default the rate text, like "5-in-15m" */
  name?: string;
  /** A Store, or a storage URI. @default process.env.FLOODGATE_STORE, else a new MemoryStore */
  store?: Store | string;
  /** Prepended to every bucket. @default the store URI's ?prefix=, else 'floodgate:' */
  prefix?: string;
  /** When the store fails and no fallback decides: true allows (fail open), false denies (503). @default false */
  skipOnError?: boolean;
  /** A store (or URI) that decides while the primary is failing, e.g. 'memory://'. */
  fallback?: Store | string;
  /** Deadline of one store call, in ms. @default 250 */
  timeoutMs?: number;
}

export interface ConsumeOptions {
  /** Units this call spends: an integer >= 0. @default 1 */
  cost?: number;
}

export const LIMITER_OPTION_NAMES = [
  'limit',
  'window',
  'algorithm',
  'burst',
  'name',
  'store',
  'prefix',
  'skipOnError',
  'fallback',
  'timeoutMs',
] as const;

const DEFAULT_PREFIX = 'floodgate:';
const DEFAULT_TIMEOUT_MS = 250;
/** When failing closed, how long clients are told to wait before trying again. */
const CLOSED_RETRY_AFTER_MS = 1000;

/** Buckets whose names were defaulted, per process, so a second limiter on the same bucket warns once. */
const defaultNamedBuckets = new Set<string>();

export class Limiter {
  readonly policies: readonly Policy[];
  readonly store: Store;
  readonly fallback: Store | undefined;
  readonly skipOnError: boolean;
  readonly timeoutMs: number;
  /** The smallest capacity among the policies: a cost above it can never pass. */
  private readonly capacity: number;
  private readonly ownsStore: boolean;
  private readonly guarded: boolean;
  /** Set when the store is a MemoryStore: its synchronous path skips a promise per call. */
  private readonly memory: MemoryStore | undefined;
  private readonly claimedBuckets: string[] = [];
  private closed = false;

  constructor(options: LimiterOptions) {
    if (options === null || typeof options !== 'object') {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `Limiter needs an options object, like new Limiter({ limit: "100/min" })`,
      );
    }
    assertKnownOptions(options, LIMITER_OPTION_NAMES, 'Limiter');
    if (options.limit === undefined) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `Limiter needs a limit, like { limit: "100/min" }`,
      );
    }
    this.skipOnError = checkBoolean(options.skipOnError ?? false, 'skipOnError');
    this.timeoutMs = checkTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS);

    const storeOption = options.store ?? process.env.FLOODGATE_STORE;
    this.ownsStore = storeOption === undefined || typeof storeOption === 'string';
    this.store = storeOption === undefined ? new MemoryStore() : resolveStore(storeOption, 'store');
    this.fallback = options.fallback === undefined ? undefined : resolveStore(options.fallback, 'fallback');
    if (
      this.fallback !== undefined &&
      (this.fallback === this.store || sameUri(options.store, options.fallback))
    ) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `fallback is the same store as the primary; give a different one, like fallback: "memory://"`,
      );
    }
    // Memory never fails and answers synchronously: no deadline or fallback machinery on its path.
    this.memory = this.store instanceof MemoryStore ? this.store : undefined;
    this.guarded = this.memory === undefined;

    const prefix = options.prefix ?? this.store.defaults?.prefix ?? DEFAULT_PREFIX;
    if (typeof prefix !== 'string' || prefix.length > 200) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `prefix ${show(prefix)} must be a string, like "app:"`,
      );
    }
    this.policies = parsePolicies(options.limit, {
      window: options.window,
      algorithm: options.algorithm,
      burst: options.burst,
      name: options.name,
      prefix,
    });
    this.capacity = Math.min(...this.policies.map((p) => p.burst));
    if (options.name === undefined) this.claimDefaultBuckets();
  }

  /** Spend `cost` (default 1) from every policy for `key`, atomically. Never rejects because a store failed. */
  consume(key: string, options?: ConsumeOptions): Promise<Decision> {
    const cost = options?.cost ?? 1;
    if (!Number.isInteger(cost) || cost < 0) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_COST',
        `cost ${show(cost)} must be a whole number >= 0, like { cost: 1 }`,
      );
    }
    return this.run(key, cost);
  }

  /** Give back `cost` units spent earlier (skipSuccessfulRequests, skipFailedRequests). */
  refund(key: string, options?: ConsumeOptions): Promise<Decision> {
    const cost = options?.cost ?? 1;
    if (!Number.isInteger(cost) || cost < 0) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_COST',
        `refund cost ${show(cost)} must be a whole number >= 0`,
      );
    }
    return this.run(key, -cost);
  }

  /** The Decision as of now, consuming nothing. */
  async peek(key: string): Promise<Decision> {
    this.assertUsable(key);
    try {
      const decisions = await this.call((store) => store.peek(key, this.policies), this.store);
      return toDecision(decisions, false, false);
    } catch (error) {
      return this.degrade(error, (store) => store.peek(key, this.policies), 0);
    }
  }

  /** Forget `key` in every policy of this limiter. */
  async reset(key: string): Promise<void> {
    this.assertUsable(key);
    const buckets = this.policies.map((p) => p.bucket);
    await this.call((store) => store.reset(key, buckets), this.store);
    if (this.fallback) await this.fallback.reset(key, buckets);
  }

  /** Close the stores this limiter created from URIs (a Store passed in stays open). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const bucket of this.claimedBuckets) defaultNamedBuckets.delete(bucket);
    if (this.ownsStore) await this.store.close();
    if (this.fallback) await this.fallback.close();
  }

  private run(key: string, cost: number): Promise<Decision> {
    this.assertUsable(key);
    const exceedsLimit = cost > this.capacity;
    if (this.memory !== undefined) {
      return Promise.resolve(
        toDecision(this.memory.consumeSync(key, this.policies, cost), false, exceedsLimit),
      );
    }
    if (!this.guarded) {
      return this.store
        .consume(key, this.policies, cost)
        .then((decisions) => toDecision(decisions, false, exceedsLimit));
    }
    return this.call((store) => store.consume(key, this.policies, cost), this.store).then(
      (decisions) => toDecision(decisions, false, exceedsLimit),
      (error: unknown) => this.degrade(error, (store) => store.consume(key, this.policies, cost), cost),
    );
  }

  private call<T>(operation: (store: Store) => Promise<T>, store: Store): Promise<T> {
    let pending: Promise<T>;
    try {
      pending = operation(store);
    } catch (error) {
      return Promise.reject(error);
    }
    return withDeadline(pending, this.timeoutMs, `the ${store.kind} store`);
  }

  /** The primary failed: the fallback decides, else skipOnError allows, else deny (adapters answer 503). */
  private async degrade(
    _error: unknown,
    operation: (store: Store) => Promise<readonly PolicyDecision[]>,
    cost: number,
  ): Promise<Decision> {
    if (this.fallback) {
      try {
        const decisions = await this.call(operation, this.fallback);
        return toDecision(decisions, 'fallback', cost > this.capacity);
      } catch {
        // The fallback failed too: fall through to the failure policy.
      }
    }
    return storeFailureDecision(this.policies, this.skipOnError ? 'open' : 'closed', CLOSED_RETRY_AFTER_MS);
  }

  private assertUsable(key: string): void {
    if (this.closed)
      throw new FloodgateError('FLOODGATE_CLOSED', 'this Limiter was closed; create a new one');
    if (typeof key !== 'string') {
      throw new FloodgateError('FLOODGATE_INVALID_KEY', `key ${show(key)} must be a string, like "user:42"`);
    }
  }

  private claimDefaultBuckets(): void {
    for (const policy of this.policies) {
      if (defaultNamedBuckets.has(policy.bucket)) {
        process.emitWarning(
          `Two limiters use the bucket "${policy.bucket}" (same default name ${policy.name}), so they share counts. ` +
            `Give each limiter its own "name" unless sharing is intended.`,
          { code: 'FLOODGATE_SHARED_BUCKET' },
        );
        continue;
      }
      defaultNamedBuckets.add(policy.bucket);
      this.claimedBuckets.push(policy.bucket);
    }
  }
}

function resolveStore(value: Store | string, what: string): Store {
  if (typeof value === 'string') return createStore(value);
  if (value !== null && typeof value === 'object' && typeof (value as Store).consume === 'function')
    return value;
  throw new FloodgateError(
    'FLOODGATE_INVALID_OPTION',
    `${what} ${show(value)} is not a store; pass a Store or a URI like "memory://", "sqlite:///limits.db" or "redis://localhost:6379"`,
  );
}

function sameUri(a: unknown, b: unknown): boolean {
  return typeof a === 'string' && typeof b === 'string' && a === b && a !== 'memory://';
}

function checkBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') {
    throw new FloodgateError('FLOODGATE_INVALID_OPTION', `${name} ${show(value)} must be true or false`);
  }
  return value;
}

function checkTimeout(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 60_000) {
    throw new FloodgateError(
      'FLOODGATE_INVALID_OPTION',
      `timeoutMs ${show(value)} must be a whole number of ms from 1 to 60000, like 250`,
    );
  }
  return value;
}

/** Re-exported for adapters and tests that want the same clock as the memory store. */
export { monotonicClock };
