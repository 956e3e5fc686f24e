// The public API of @floodgate/core. Everything a user imports is re-exported here and nowhere else.

export {
  ADAPTER_OPTION_NAMES,
  type AdapterOptions,
  type Admission,
  type Answer,
  assertAdapterOptions,
  type CheckResult,
  QUOTA_EXCEEDED_TYPE,
  type RateLimitOptions,
  RequestLimiter,
} from './adapter.js';
export {
  ALGORITHM_NAMES,
  ALGORITHMS,
  fixedWindow,
  gcra,
  leakyBucket,
  type ReusableStepResult,
  type ReusingAlgorithm,
  slidingLog,
  slidingWindow,
  tokenBucket,
} from './algorithms/index.js';
export { coarseMonotonicClock, monotonicClock, wallClock } from './clock.js';
export { storeFailureDecision, toDecision } from './decision.js';
export { FloodgateError, type FloodgateErrorCode, isFloodgateError } from './errors.js';
export { type Evaluation, evaluate, peekPolicy, toPolicyDecision } from './evaluate.js';
export {
  ceilSeconds,
  checkHeadersOption,
  DEFAULT_HEADERS,
  HEADER_STANDARDS,
  type HeaderStandard,
  type HeadersOption,
  type HeaderTarget,
  HeaderWriter,
  rateLimitHeaders,
  retryAfterSeconds,
} from './headers.js';
export { checkIpv6Subnet, DEFAULT_IPV6_SUBNET, type Ipv6Subnet, ipKey } from './keys.js';
export {
  type ConsumeOptions,
  LIMITER_OPTION_NAMES,
  Limiter,
  type LimiterHealth,
  type LimiterOptions,
} from './limiter.js';
export {
  type Duration,
  formatDuration,
  type LimitOption,
  type PolicyOptions,
  parseDuration,
  parsePolicies,
  parseRate,
} from './rate.js';
export {
  type BreakerOptions,
  type BreakerSnapshot,
  type BreakerState,
  CircuitBreaker,
} from './resilience/circuit-breaker.js';
export type {
  DegradedEvent,
  LimitEvent,
  LimiterHooks,
  RecoveredEvent,
  StoreErrorEvent,
  StoreOperation,
  StoreRole,
} from './resilience/events.js';
export { MemoryStore, type MemoryStoreOptions } from './stores/memory.js';
export {
  MultiStore,
  type MultiStoreOptions,
  type MultiStoreStatus,
  type MultiStrategy,
  type MultiSwitch,
} from './stores/multi.js';
export { RedisStore } from './stores/redis/index.js';
export { SqliteStore, type SqliteStoreOptions, type SqliteSynchronous } from './stores/sqlite/index.js';
/** @internal For the adapters: releasing admitted requests together at the end of the loop turn. */
export { atTurnEnd, turnEnd } from './turn.js';
export type {
  Algorithm,
  AlgorithmName,
  AlgorithmState,
  Clock,
  Decision,
  Degraded,
  Policy,
  PolicyDecision,
  StepResult,
  Store,
  StoreEntry,
  StoreHealth,
} from './types.js';
export { createStore } from './uri.js';
