/**
 * The shared vocabulary of floodgate: policies, algorithm steps, decisions and the store contract.
 * Everything here is part of the public API (re-exported from index.ts).
 */

/** The six algorithms; see docs/algorithms.md for what `limit`, `window` and `burst` mean in each. */
export type AlgorithmName =
  | 'fixed-window'
  | 'sliding-window'
  | 'sliding-log'
  | 'token-bucket'
  | 'leaky-bucket'
  | 'gcra';

/** One limit, parsed and validated once at construction. */
export interface Policy {
  /** Name shown in headers and used in the bucket; defaults to the rate text, like `5-in-15m`. */
  readonly name: string;
  /** Requests (cost units) per window: an integer from 1 to 1e9. */
  readonly limit: number;
  /** Window length in milliseconds (an integer >= 1). */
  readonly windowMs: number;
  readonly algorithm: AlgorithmName;
  /**
   * Capacity for token bucket, leaky bucket and GCRA (how much can be spent at once);
   * equals `limit` unless set. Window algorithms ignore it (always `limit`).
   */
  readonly burst: number;
  /**
   * Store namespace of this policy: prefix + name + algorithm tag. Two limiters share counts
   * exactly when their buckets (and keys and store) are equal.
   */
  readonly bucket: string;
}

/** Algorithm state: a short array of numbers whose meaning belongs to the algorithm. */
export type AlgorithmState = readonly number[];

/** The outcome of one pure algorithm step. */
export interface StepResult {
  /** The state to store if the check is admitted (never stored on a denial). */
  readonly state: number[];
  readonly allowed: boolean;
  /** Integer >= 0: what is left after this step (on a denial: what is left now). */
  readonly remaining: number;
  /** Integer >= 0: milliseconds until the full limit is available again. */
  readonly resetMs: number;
  /** Integer >= 0: 0 when allowed; else the wait after which the same cost would be admitted. */
  readonly retryAfterMs: number;
  /** Integer >= 1: how long the new state matters; a store may drop it after this. */
  readonly ttlMs: number;
  /**
   * True when the stored state lay in the future (the clock went back) and was pulled back to now.
   * A store then writes `state` even on a denial — it consumes nothing, it only re-dates the state —
   * so the key is not blocked until the clock catches up with its old time.
   */
  readonly rewound: boolean;
}

/**
 * An algorithm is a pure transition: no clock, no I/O, no hidden state. `state` is undefined for a
 * key never seen (or expired). `cost` 0 is a read: it reports the state as of `nowMs` and is allowed.
 * A negative `cost` is a refund (used by skipSuccessfulRequests): it gives units back, clamped to
 * the empty state, and is always allowed.
 */
export interface Algorithm {
  readonly name: AlgorithmName;
  /** Short tag used in storage keys (`fw`, `sw`, `sl`, `tb`, `lb`, `gcra`). */
  readonly tag: string;
  step(state: AlgorithmState | undefined, nowMs: number, policy: Policy, cost: number): StepResult;
}

/** The part of a Decision that belongs to one policy. */
export interface PolicyDecision {
  /** The policy's name. */
  readonly policy: string;
  readonly limit: number;
  readonly windowMs: number;
  readonly allowed: boolean;
  readonly remaining: number;
  readonly resetMs: number;
  readonly retryAfterMs: number;
}

/**
 * How the answer was reached when the primary store could not give it:
 * `false` (the store decided), `'fallback'` (the fallback store decided),
 * `'open'` (store failed, allowed by skipOnError) or `'closed'` (store failed, denied).
 */
export type Degraded = false | 'fallback' | 'open' | 'closed';

/** What `Limiter.consume` and `Limiter.peek` resolve with. All numbers are integers >= 0. */
export interface Decision {
  readonly allowed: boolean;
  /** Limit of the most restrictive policy (the one that denied, else the one with least remaining). */
  readonly limit: number;
  readonly remaining: number;
  /** Milliseconds until the most restrictive policy's full limit is available again. */
  readonly resetMs: number;
  /** 0 when allowed; else milliseconds after which the same call would be admitted. */
  readonly retryAfterMs: number;
  /** Name of the most restrictive policy. */
  readonly policy: string;
  /** One entry per policy, in the order they were given. */
  readonly policies: readonly PolicyDecision[];
  readonly degraded: Degraded;
  /**
   * True when the cost is larger than a policy's capacity, so no wait will ever admit this call.
   * `retryAfterMs` then holds the time until the full limit is back, which is the best a client can do.
   */
  readonly exceedsLimit: boolean;
}

/** Health of a store as its own probe sees it. */
export interface StoreHealth {
  readonly ok: boolean;
  /** How long the probe took, in milliseconds. */
  readonly latencyMs: number;
  /** What is wrong, when not ok; or a short description of the backend. */
  readonly detail?: string;
}

/** One stored bucket, as listed by `Store.entries`. */
export interface StoreEntry {
  readonly bucket: string;
  readonly key: string;
  readonly state: AlgorithmState;
  /** Wall-clock time (ms since epoch) after which the entry is gone. */
  readonly expiresAt: number;
}

/**
 * The store contract. Every method is one atomic operation against the backend.
 * `consume` checks every policy at once: it admits only if all admit, and a denial writes nothing.
 * Run `@floodgate/core/testing`'s `describeStoreConformance` against any implementation.
 */
export interface Store {
  /** A short name of the backend, like `memory`, `sqlite`, `redis`. */
  readonly kind: string;
  /** Options this store was given through a URI that the Limiter should honour (like `prefix`). */
  readonly defaults?: { readonly prefix?: string };
  consume(key: string, policies: readonly Policy[], cost: number): Promise<readonly PolicyDecision[]>;
  /**
   * The decision as of now, writing nothing: `remaining` and `resetMs` as they stand,
   * `allowed` and `retryAfterMs` for a call of cost 1.
   */
  peek(key: string, policies: readonly Policy[]): Promise<readonly PolicyDecision[]>;
  /** Forget `key` in the given buckets (Policy.bucket values). */
  reset(key: string, buckets: readonly string[]): Promise<void>;
  /** Remove every entry whose bucket starts with `prefix`; resolves with how many were removed. */
  clear(prefix: string): Promise<number>;
  /** Every live entry whose bucket starts with `prefix`. */
  entries(prefix: string): AsyncIterable<StoreEntry>;
  health(): Promise<StoreHealth>;
  close(): Promise<void>;
}

/** A clock returning milliseconds since the Unix epoch (fractions allowed). */
export type Clock = () => number;
