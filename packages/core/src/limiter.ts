/**
 * Limiter: policies + store + failure rules -> Decision. The one object adapters talk to.
 */
import { monotonicClock } from './clock.js';
import { storeFailureDecision, toDecision } from './decision.js';
import { assertKnownOptions, FloodgateError, show } from './errors.js';
import { type Duration, type LimitOption, parsePolicies } from './rate.js';
import {
  type Admission,
  type BreakerOptions,
  type BreakerSnapshot,
  CircuitBreaker,
  parseBreakerOptions,
} from './resilience/circuit-breaker.js';
import { withDeadline } from './resilience/deadline.js';
import { type Deadlined, DeadlineQueue } from './resilience/deadline-queue.js';
import {
  emit,
  HOOK_NAMES,
  type LimiterHooks,
  parseHooks,
  type StoreOperation,
  type StoreRole,
} from './resilience/events.js';
import { checkFallbackShare, fallbackPolicies, sameBackend } from './resilience/failure-policy.js';
import { MemoryStore } from './stores/memory.js';
import { MultiStore, type MultiStoreStatus } from './stores/multi.js';
import type { AlgorithmName, Decision, Degraded, Policy, PolicyDecision, Store } from './types.js';
import { createStore } from './uri.js';

export interface LimiterOptions extends LimiterHooks {
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
  /**
   * A Store, a storage URI, or a list of URIs (a MultiStore, first-healthy).
   * @default process.env.FLOODGATE_STORE, else a new MemoryStore
   */
  store?: Store | string | readonly string[];
  /** Prepended to every bucket. @default the store URI's ?prefix=, else 'floodgate:' */
  prefix?: string;
  /** When the store fails and no fallback decides: true allows (fail open), false denies (503). @default false */
  skipOnError?: boolean;
  /** A store (or URI) that decides while the primary is failing, e.g. 'memory://'. */
  fallback?: Store | string;
  /**
   * This process's share of each limit while the fallback decides (0 < share <= 1). A memory
   * fallback counts per process: with 4 processes, 0.25 keeps the fleet near the limit. @default 1
   */
  fallbackShare?: number;
  /** Deadline of one store call, in ms (1 to 60000). A late answer is dropped. @default 250 */
  timeoutMs?: number;
  /**
   * Circuit breaker around the primary store, or false to call it every time.
   * @default { threshold: 5, windowMs: 5000, cooldownMs: 500 }
   */
  breaker?: BreakerOptions | boolean;
}

/** What `limiter.health()` reports: a synchronous snapshot, cheap enough for every scrape. */
export interface LimiterHealth {
  /** 'ok' when the primary store is deciding; 'degraded' while it fails or the breaker is not closed. */
  readonly status: 'ok' | 'degraded';
  /** The primary store's kind, like "redis". */
  readonly store: string;
  readonly fallback: string | undefined;
  /** How decisions are made now: false (by the primary), 'fallback', 'open' or 'closed'. */
  readonly degraded: Degraded;
  /** Milliseconds since decisions became degraded (0 when not degraded). */
  readonly degradedForMs: number;
  /** The breaker's state, or 'off' (breaker: false, or a memory store, which cannot fail). */
  readonly breaker: BreakerSnapshot | 'off';
  /** The last store failure, if any. */
  readonly lastError: { readonly message: string; readonly agoMs: number } | undefined;
  readonly counts: {
    readonly storeErrors: number;
    readonly timeouts: number;
    readonly fallback: number;
    readonly open: number;
    readonly closed: number;
  };
  /** Members of a multi-store primary. */
  readonly members?: MultiStoreStatus;
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
  'fallbackShare',
  'timeoutMs',
  'breaker',
  ...HOOK_NAMES,
] as const;

const DEFAULT_PREFIX = 'floodgate:';
const DEFAULT_TIMEOUT_MS = 250;
/** When failing closed, the least clients are told to wait (the breaker's cool-down may say more). */
const CLOSED_RETRY_AFTER_MS = 1000;

/** Buckets whose names were defaulted, per process, so a second limiter on the same bucket warns once. */
const defaultNamedBuckets = new Set<string>();

export class Limiter {
  readonly policies: readonly Policy[];
  readonly store: Store;
  readonly fallback: Store | undefined;
  readonly skipOnError: boolean;
  readonly timeoutMs: number;
  /** Undefined when turned off, and for a memory store (it cannot fail). */
  private readonly breaker: CircuitBreaker | undefined;
  private readonly hooks: LimiterHooks;
  private readonly onLimit: LimiterHooks['onLimit'];
  /** The policies the fallback enforces (scaled by fallbackShare). */
  private readonly fallbackPolicies: readonly Policy[];
  private readonly ownsFallback: boolean;
  private degradedMode: Degraded = false;
  private degradedSince = 0;
  private degradedDecisions = 0;
  private lastError: { message: string; at: number } | undefined;
  private readonly counts = { storeErrors: 0, timeouts: 0, fallback: 0, open: 0, closed: 0 };
  /** The smallest capacity among the policies: a cost above it can never pass. */
  private readonly capacity: number;
  private readonly ownsStore: boolean;
  /** Set when the store is a MemoryStore: its synchronous path skips a promise per call. */
  private readonly memory: MemoryStore | undefined;
  private readonly claimedBuckets: string[] = [];
  private closed = false;
  /** Calls waiting on the primary, with their deadlines (one timer for all of them). */
  private readonly calls: DeadlineQueue<PrimaryCall>;

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
    this.calls = new DeadlineQueue<PrimaryCall>((call) =>
      this.primaryFailed(
        call,
        new FloodgateError(
          'FLOODGATE_STORE_TIMEOUT',
          `the ${this.store.kind} store did not answer within ${this.timeoutMs} ms`,
        ),
      ),
    );
    const share = checkFallbackShare(options.fallbackShare);
    const breakerSettings = parseBreakerOptions(options.breaker);
    this.hooks = parseHooks(options);
    this.onLimit = this.hooks.onLimit;

    // Check everything about the fallback before opening any store, so a bad option leaks nothing.
    const storeOption = options.store ?? process.env.FLOODGATE_STORE;
    if (options.fallback !== undefined && storeOption !== undefined) {
      const primaries =
        typeof storeOption === 'string' ? [storeOption] : Array.isArray(storeOption) ? storeOption : [];
      const same =
        options.fallback === storeOption ||
        (typeof options.fallback === 'string' &&
          primaries.some(
            (uri: unknown) => typeof uri === 'string' && sameBackend(uri, options.fallback as string),
          ));
      if (same) {
        throw new FloodgateError(
          'FLOODGATE_INVALID_OPTION',
          `fallback ${show(typeof options.fallback === 'string' ? options.fallback : 'store')} is the same backend as the primary store, so it would fail with it; give a different one, like fallback: "memory://"`,
        );
      }
    }
    if (options.fallbackShare !== undefined && options.fallback === undefined) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        'fallbackShare only applies with a fallback store; add one, like fallback: "memory://"',
      );
    }
    this.ownsStore =
      storeOption === undefined || typeof storeOption === 'string' || Array.isArray(storeOption);
    this.store = storeOption === undefined ? new MemoryStore() : resolveStore(storeOption, 'store');
    this.ownsFallback = typeof options.fallback === 'string';
    try {
      this.fallback = options.fallback === undefined ? undefined : resolveStore(options.fallback, 'fallback');
    } catch (error) {
      if (this.ownsStore) void this.store.close().catch(() => {});
      throw error;
    }
    // Memory never fails and answers synchronously: no deadline, breaker or fallback on its path.
    this.memory = this.store instanceof MemoryStore ? this.store : undefined;
    this.breaker =
      this.memory === undefined && breakerSettings !== false
        ? new CircuitBreaker(breakerSettings, (_from, to) => {
            if (to === 'open') {
              this.enterDegraded(undefined);
              this.releaseWaiting();
            }
          })
        : undefined;

    try {
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
    } catch (error) {
      // A bad limit or prefix must not leave a connection open that keeps the process alive.
      if (this.ownsStore) void this.store.close().catch(() => {});
      if (this.fallback && this.ownsFallback) void this.fallback.close().catch(() => {});
      throw error;
    }
    this.capacity = Math.min(...this.policies.map((p) => p.burst));
    this.fallbackPolicies = fallbackPolicies(this.policies, share);
    if (options.name === undefined) this.claimDefaultBuckets();
  }

  /** Spend `cost` (default 1) from every policy for `key`, atomically. Never rejects because a store failed. */
  consume(key: string, options?: ConsumeOptions): Promise<Decision> {
    const cost = options?.cost ?? 1;
    assertCost(cost, 'cost');
    return this.run(key, cost);
  }

  /** Give back `cost` units spent earlier (skipSuccessfulRequests, skipFailedRequests). */
  refund(key: string, options?: ConsumeOptions): Promise<Decision> {
    const cost = options?.cost ?? 1;
    assertCost(cost, 'refund cost');
    return this.run(key, -cost);
  }

  /** The Decision as of now, consuming nothing. Never rejects because a store failed. */
  peek(key: string): Promise<Decision> {
    this.assertUsable(key);
    if (this.memory !== undefined) {
      return this.memory.peek(key, this.policies).then((decisions) => toDecision(decisions, false, false));
    }
    return this.decide(key, 'peek', 0);
  }

  /** Forget `key` in every policy of this limiter (in the fallback too). Rejects if the primary fails. */
  async reset(key: string): Promise<void> {
    this.assertUsable(key);
    const buckets = this.policies.map((p) => p.bucket);
    const fallback = this.fallback
      ? this.call((store) => store.reset(key, buckets), this.fallback).catch(() => {})
      : undefined;
    await this.call((store) => store.reset(key, buckets), this.store);
    await fallback;
  }

  /**
   * A snapshot of how this limiter is deciding: breaker state, degraded mode, failure counts.
   * Synchronous and cheap; for the store's own probe use `limiter.store.health()`.
   */
  health(): LimiterHealth {
    const now = monotonicClock();
    return {
      status:
        this.degradedMode === false && (this.breaker?.state ?? 'closed') === 'closed' ? 'ok' : 'degraded',
      store: this.store.kind,
      fallback: this.fallback?.kind,
      degraded: this.degradedMode,
      degradedForMs: this.degradedMode === false ? 0 : Math.round(now - this.degradedSince),
      breaker: this.breaker ? this.breaker.snapshot() : 'off',
      lastError: this.lastError && {
        message: this.lastError.message,
        agoMs: Math.round(now - this.lastError.at),
      },
      counts: { ...this.counts },
      ...(this.store instanceof MultiStore ? { members: this.store.status() } : {}),
    };
  }

  /** Close the stores this limiter created from URIs (a Store passed in stays open). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const bucket of this.claimedBuckets) defaultNamedBuckets.delete(bucket);
    if (this.ownsStore) await this.store.close();
    if (this.fallback && this.ownsFallback) await this.fallback.close();
  }

  private run(key: string, cost: number): Promise<Decision> {
    this.assertUsable(key);
    if (this.memory !== undefined) return Promise.resolve(this.consumeInMemory(this.memory, key, cost));
    return this.runOnStore(key, cost);
  }

  /**
   * For the adapters: the Decision of `consume(key, { cost })` without a promise when the store is
   * memory (which answers synchronously and never fails), else undefined and nothing is counted.
   * Throws for an invalid cost, as consume() does. Lets a framework hook answer without an async step.
   * @internal
   */
  consumeNow(key: string, cost: number): Decision | undefined {
    if (this.memory === undefined) return undefined;
    assertCost(cost, 'cost');
    this.assertUsable(key);
    return this.consumeInMemory(this.memory, key, cost);
  }

  private consumeInMemory(memory: MemoryStore, key: string, cost: number): Decision {
    const decision = memory.consumeDecision(key, this.policies, cost, cost > this.capacity);
    if (!decision.allowed && this.onLimit) emit(this.onLimit, 'onLimit', { key, decision });
    return decision;
  }

  private runOnStore(key: string, cost: number): Promise<Decision> {
    return this.decide(key, cost < 0 ? 'refund' : 'consume', cost);
  }

  /**
   * The failure pipeline of one call: breaker -> primary under the deadline -> on failure, the
   * fallback, else skipOnError, else deny. Always resolves. Kept light, as it runs per check: no
   * closure per call but the two handlers of the store's answer, and no timer (see DeadlineQueue).
   */
  private decide(key: string, operation: StoreOperation, cost: number): Promise<Decision> {
    const breaker = this.breaker;
    const admission = breaker ? breaker.admit() : 'call';
    if (admission !== 'call') {
      // Open (or half-open): the primary is skipped. When the cool-down is over, a probe goes out in
      // the background, so no request ever waits on a backend that may still be dead.
      if (admission === 'probe') this.probe();
      return this.degrade(key, operation, cost, undefined);
    }
    const sentAt = monotonicClock();
    const call = new PrimaryCall(key, operation, cost, admission, sentAt, sentAt + this.timeoutMs);
    const decision = new Promise<Decision>(this.capture);
    call.resolve = this.captured!;
    let pending: Promise<readonly PolicyDecision[]>;
    try {
      pending =
        operation === 'peek'
          ? this.store.peek(key, this.policies)
          : this.store.consume(key, this.policies, cost);
    } catch (error) {
      call.settled = true;
      this.primaryFailed(call, error);
      return decision;
    }
    this.calls.add(call);
    pending.then(
      (decisions) => this.answered(call, decisions),
      (error: unknown) => {
        if (this.calls.settle(call)) this.primaryFailed(call, error);
      },
    );
    return decision;
  }

  /** `new Promise(this.capture)` hands its resolve to `captured`, with no executor closure per call. */
  private captured: ((decision: Decision | Promise<Decision>) => void) | undefined;
  private readonly capture = (resolve: (decision: Decision | Promise<Decision>) => void): void => {
    this.captured = resolve;
  };

  /** The primary answered `call` (a late answer, after its deadline or a release, is dropped). */
  private answered(call: PrimaryCall, decisions: readonly PolicyDecision[]): void {
    if (!this.calls.settle(call)) return;
    let decision: Decision;
    try {
      decision = toDecision(decisions, false, call.cost > this.capacity);
    } catch {
      this.primaryFailed(
        call,
        new FloodgateError(
          'FLOODGATE_STORE_FAILED',
          `the ${this.store.kind} store answered ${show(decisions)}`,
        ),
      );
      return;
    }
    this.breaker?.succeeded(call.admission);
    // A slow answer that lands after the breaker opened is no recovery: wait for the probe.
    if (this.degradedMode !== false && (this.breaker?.state ?? 'closed') === 'closed') this.recovered();
    if (!decision.allowed && call.operation === 'consume')
      emit(this.onLimit, 'onLimit', { key: call.key, decision });
    call.resolve(decision);
  }

  /** `call` failed on the primary (an error, a bad answer, or its deadline passed). */
  private primaryFailed(call: PrimaryCall, error: unknown): void {
    this.breaker?.failed(call.admission, isTimeout(error) ? call.sentAt : undefined);
    this.storeFailed(error, 'primary', this.store, call.operation, call.key);
    call.resolve(this.degrade(call.key, call.operation, call.cost, error));
  }

  /** The breaker opened: calls still waiting on the primary are answered by the failure policy now. */
  private releaseWaiting(): void {
    this.calls.releaseAll((call) =>
      call.resolve(this.degrade(call.key, call.operation, call.cost, undefined)),
    );
  }

  /**
   * The half-open probe: one read-only check of a reserved key through the same path as a real
   * call (on Redis, the same script), under the same deadline. Success closes the breaker.
   */
  private probe(): void {
    const breaker = this.breaker!;
    this.call((store) => store.peek(PROBE_KEY, this.policies), this.store)
      .then((decisions) => {
        if (!Array.isArray(decisions) || decisions.length !== this.policies.length) {
          throw new FloodgateError(
            'FLOODGATE_STORE_FAILED',
            `the ${this.store.kind} store answered ${show(decisions)}`,
          );
        }
        breaker.succeeded('probe');
        if (this.degradedMode !== false) this.recovered();
      })
      .catch((error: unknown) => {
        breaker.failed('probe');
        this.storeFailed(error, 'primary', this.store, 'probe', PROBE_KEY);
      });
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

  /** The primary failed or was skipped: the fallback decides, else skipOnError allows, else deny (503). */
  private async degrade(
    key: string,
    operation: StoreOperation,
    cost: number,
    error: unknown,
  ): Promise<Decision> {
    if (this.fallback) {
      try {
        const policies = this.fallbackPolicies;
        const decisions = await this.call(
          (store) => (operation === 'peek' ? store.peek(key, policies) : store.consume(key, policies, cost)),
          this.fallback,
        );
        const decision = toDecision(decisions, 'fallback', cost > this.capacity);
        this.countDegraded('fallback', error);
        if (!decision.allowed && operation === 'consume') emit(this.onLimit, 'onLimit', { key, decision });
        return decision;
      } catch (fallbackError) {
        // The fallback failed too: the failure policy answers.
        this.storeFailed(fallbackError, 'fallback', this.fallback, operation, key);
      }
    }
    const mode = this.skipOnError ? 'open' : 'closed';
    this.countDegraded(mode, error);
    const retryAfterMs = Math.max(CLOSED_RETRY_AFTER_MS, this.breaker?.retryInMs() ?? 0);
    return storeFailureDecision(this.policies, mode, retryAfterMs);
  }

  private storeFailed(
    error: unknown,
    role: StoreRole,
    store: Store,
    operation: StoreOperation,
    key: string,
  ): void {
    this.counts.storeErrors++;
    if (isTimeout(error)) this.counts.timeouts++;
    this.lastError = {
      message: error instanceof Error ? error.message : show(error),
      at: monotonicClock(),
    };
    emit(this.hooks.onStoreError, 'onStoreError', { error, store: role, kind: store.kind, operation, key });
  }

  private countDegraded(mode: Exclude<Degraded, false>, error: unknown): void {
    this.counts[mode]++;
    this.degradedDecisions++;
    if (this.degradedMode !== mode) this.enterDegraded(error, mode);
  }

  /** Decisions start (or change how they are) being made without the primary. */
  private enterDegraded(error: unknown, mode?: Exclude<Degraded, false>): void {
    const next = mode ?? (this.fallback ? 'fallback' : this.skipOnError ? 'open' : 'closed');
    if (this.degradedMode === next) return;
    if (this.degradedMode === false) {
      this.degradedSince = monotonicClock();
      this.degradedDecisions = 0;
    }
    this.degradedMode = next;
    emit(this.hooks.onDegraded, 'onDegraded', { mode: next, error, breaker: this.breaker?.state ?? 'off' });
  }

  private recovered(): void {
    const downtimeMs = Math.round(monotonicClock() - this.degradedSince);
    const degradedDecisions = this.degradedDecisions;
    this.degradedMode = false;
    this.degradedDecisions = 0;
    emit(this.hooks.onRecovered, 'onRecovered', { downtimeMs, degradedDecisions });
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

/** The key the breaker's probe peeks at: read-only, so it never creates state. */
const PROBE_KEY = '__floodgate_probe__';

/** A cost is a whole number >= 0 (a refund gives one back); anything else is a programming error. */
function assertCost(cost: number, what: 'cost' | 'refund cost'): void {
  if (Number.isInteger(cost) && cost >= 0) return;
  throw new FloodgateError(
    'FLOODGATE_INVALID_COST',
    `${what} ${show(cost)} must be a whole number >= 0, like { cost: 1 }`,
  );
}

function isTimeout(error: unknown): boolean {
  return error instanceof FloodgateError && error.code === 'FLOODGATE_STORE_TIMEOUT';
}

/** One call to the primary store, from when it is sent until it is answered, times out or is released. */
class PrimaryCall implements Deadlined {
  settled = false;
  resolve!: (decision: Decision | Promise<Decision>) => void;
  constructor(
    readonly key: string,
    readonly operation: StoreOperation,
    readonly cost: number,
    readonly admission: Admission,
    readonly sentAt: number,
    readonly deadline: number,
  ) {}
}

function resolveStore(value: Store | string | readonly string[], what: string): Store {
  if (typeof value === 'string') return createStore(value);
  if (Array.isArray(value)) return createStore(value as readonly string[]);
  if (value !== null && typeof value === 'object' && typeof (value as Store).consume === 'function')
    return value as Store;
  throw new FloodgateError(
    'FLOODGATE_INVALID_OPTION',
    `${what} ${show(value)} is not a store; pass a Store or a URI like "memory://", "sqlite:///limits.db" or "redis://localhost:6379"`,
  );
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
