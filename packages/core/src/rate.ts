/**
 * Rate and duration parsing: "100/min", "5/15m", "10/s", numbers with a window, and policy
 * objects all become validated Policy records once, at construction.
 */
import { ALGORITHM_NAMES, algorithmByName } from './algorithms/index.js';
import { assertKnownOptions, closest, FloodgateError, show } from './errors.js';
import type { AlgorithmName, Policy } from './types.js';

/** The most a window may be: ten years, so every time stays an exact double and no timer is involved. */
export const MAX_WINDOW_MS = 10 * 365 * 24 * 3600 * 1000;
export const MAX_LIMIT = 1e9;
export const DEFAULT_ALGORITHM: AlgorithmName = 'sliding-window';

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hrs: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
};

/** A duration: milliseconds as a number, or text such as "500ms", "10s", "1m", "15m", "1h", "1d". */
export type Duration = number | string;

/** One limit written as an object. */
export interface PolicyOptions {
  /** Requests (cost units) per window, an integer from 1 to 1e9; or a rate text like "100/min". */
  limit: number | string;
  /** Window length; required when `limit` is a number. */
  window?: Duration;
  /** Algorithm for this policy. @default the limiter's algorithm, else 'sliding-window' */
  algorithm?: AlgorithmName;
  /** Name in headers and storage. @default the rate text, like "5-in-15m" */
  name?: string;
  /** Capacity for token-bucket, leaky-bucket and gcra. @default limit */
  burst?: number;
}

/** What `limit` accepts: a rate text, a policy object, or a list of them for several policies at once. */
export type LimitOption = string | PolicyOptions | ReadonlyArray<string | PolicyOptions>;

/** Defaults a Limiter applies to the policies it is given. */
export interface PolicyDefaults {
  window?: Duration;
  algorithm?: AlgorithmName;
  name?: string;
  burst?: number;
  prefix: string;
}

/** Units offered in "did you mean" hints, most likely first (so "mn" suggests "min", not "ms"). */
const UNIT_HINTS = ['min', 's', 'h', 'd', 'ms', 'sec', 'hour', 'day', 'minute', 'second'];

const RATE_PATTERN = /^\s*(\d+)\s*(?:\/|per\s)\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*$/i;
const DURATION_PATTERN = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$/i;
const NAME_PATTERN = /^[\x21\x23-\x5b\x5d-\x7e][\x20\x21\x23-\x5b\x5d-\x7e]{0,99}$/;

const RATE_HINT = 'write a count and a unit, like "100/min", "5/15m", "10/s", "1000/h" or "2/d"';
const DURATION_HINT =
  'write milliseconds as an integer, or text like "500ms", "10s", "1m", "15m", "1h", "1d"';

/** Parse a duration into integer milliseconds, or throw FLOODGATE_INVALID_OPTION naming `what`. */
export function parseDuration(value: unknown, what = 'window'): number {
  let ms: number;
  if (typeof value === 'number') {
    ms = value;
  } else if (typeof value === 'string') {
    const match = DURATION_PATTERN.exec(value);
    const unit = match ? UNIT_MS[match[2].toLowerCase()] : undefined;
    if (!match || unit === undefined) {
      const hint = match ? closest(match[2], UNIT_HINTS) : undefined;
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `${what} ${show(value)} is not a duration${hint ? ` (did you mean "${match?.[1]}${hint}"?)` : ''}; ${DURATION_HINT}`,
      );
    }
    ms = Number(match[1]) * unit;
  } else {
    throw new FloodgateError(
      'FLOODGATE_INVALID_OPTION',
      `${what} ${show(value)} is not a duration; ${DURATION_HINT}`,
    );
  }
  return checkWindow(ms, value, what);
}

function checkWindow(ms: number, original: unknown, what: string): number {
  if (!Number.isFinite(ms) || !Number.isInteger(ms) || ms < 1) {
    throw new FloodgateError(
      'FLOODGATE_INVALID_OPTION',
      `${what} ${show(original)} must be a whole number of milliseconds >= 1; ${DURATION_HINT}`,
    );
  }
  if (ms > MAX_WINDOW_MS) {
    throw new FloodgateError(
      'FLOODGATE_INVALID_OPTION',
      `${what} ${show(original)} is longer than ten years (${MAX_WINDOW_MS} ms); use a shorter window`,
    );
  }
  return ms;
}

/** "100/min" -> { limit: 100, windowMs: 60000 }. */
export function parseRate(text: string): { limit: number; windowMs: number } {
  const match = RATE_PATTERN.exec(text);
  if (!match) {
    throw new FloodgateError('FLOODGATE_INVALID_RATE', `${show(text)} is not a rate; ${RATE_HINT}`);
  }
  const unitMs = UNIT_MS[match[3].toLowerCase()];
  if (unitMs === undefined) {
    const hint = closest(match[3], UNIT_HINTS);
    throw new FloodgateError(
      'FLOODGATE_INVALID_RATE',
      `${show(text)} is not a rate: unknown unit ${show(match[3])}${hint ? ` (did you mean "${match[1]}/${match[2] ?? ''}${hint}"?)` : ''}; ${RATE_HINT}`,
    );
  }
  const limit = checkLimit(Number(match[1]), text);
  const count = match[2] === undefined ? 1 : Number(match[2]);
  const windowMs = count * unitMs;
  if (!Number.isInteger(windowMs) || windowMs < 1) {
    throw new FloodgateError(
      'FLOODGATE_INVALID_RATE',
      `${show(text)} has an empty or fractional window; ${RATE_HINT}`,
    );
  }
  if (windowMs > MAX_WINDOW_MS) {
    throw new FloodgateError('FLOODGATE_INVALID_RATE', `${show(text)} has a window longer than ten years`);
  }
  return { limit, windowMs };
}

function checkLimit(limit: unknown, original: unknown): number {
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new FloodgateError(
      typeof original === 'string' ? 'FLOODGATE_INVALID_RATE' : 'FLOODGATE_INVALID_OPTION',
      `limit ${show(original)} must be a whole number from 1 to ${MAX_LIMIT}; ${RATE_HINT}`,
    );
  }
  return limit;
}

/** 900000 -> "15m"; the largest unit that divides the window exactly. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const POLICY_OPTION_NAMES = ['limit', 'window', 'algorithm', 'name', 'burst'] as const;

/** Validate the `limit` option (and the limiter-wide defaults) into one Policy per limit. */
export function parsePolicies(option: unknown, defaults: PolicyDefaults): Policy[] {
  const items: unknown[] = Array.isArray(option) ? option : [option];
  if (items.length === 0) {
    throw new FloodgateError(
      'FLOODGATE_INVALID_OPTION',
      `limit is an empty list; give at least one rate, like "100/min"`,
    );
  }
  const policies = items.map((item) => parseOnePolicy(item, defaults, items.length > 1));
  const seen = new Set<string>();
  for (const policy of policies) {
    if (seen.has(policy.bucket)) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `two policies share the name ${show(policy.name)}; give each a distinct "name"`,
      );
    }
    seen.add(policy.bucket);
  }
  return policies;
}

function parseOnePolicy(item: unknown, defaults: PolicyDefaults, several: boolean): Policy {
  let limit: number;
  let windowMs: number;
  let algorithm = defaults.algorithm;
  let name = several ? undefined : defaults.name;
  let burst = defaults.burst;
  if (typeof item === 'string') {
    ({ limit, windowMs } = parseRate(item));
  } else if (typeof item === 'number') {
    limit = checkLimit(item, item);
    if (defaults.window === undefined) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `limit ${item} needs a window; write { limit: ${item}, window: "1m" } or "${item}/min"`,
      );
    }
    windowMs = parseDuration(defaults.window);
  } else if (item !== null && typeof item === 'object') {
    assertKnownOptions(item, POLICY_OPTION_NAMES, 'a policy object');
    const options = item as PolicyOptions;
    if (typeof options.limit === 'string') {
      if (options.window !== undefined) {
        throw new FloodgateError(
          'FLOODGATE_INVALID_OPTION',
          `policy ${show(options.limit)} gives both a rate text and a window; write { limit: 100, window: "1m" } or { limit: "100/min" }`,
        );
      }
      ({ limit, windowMs } = parseRate(options.limit));
    } else {
      limit = checkLimit(options.limit, options.limit);
      const window = options.window ?? defaults.window;
      if (window === undefined) {
        throw new FloodgateError(
          'FLOODGATE_INVALID_OPTION',
          `policy { limit: ${limit} } needs a window; write { limit: ${limit}, window: "1m" }`,
        );
      }
      windowMs = parseDuration(window);
    }
    algorithm = options.algorithm ?? algorithm;
    name = options.name ?? name;
    burst = options.burst ?? burst;
  } else {
    throw new FloodgateError(
      'FLOODGATE_INVALID_RATE',
      `limit ${show(item)} is not a rate; ${RATE_HINT}, or an object { limit: 100, window: "1m" }`,
    );
  }
  const resolvedAlgorithm = checkAlgorithm(algorithm ?? DEFAULT_ALGORITHM);
  const resolvedName = name ?? `${limit}-in-${formatDuration(windowMs)}`;
  if (typeof resolvedName !== 'string' || !NAME_PATTERN.test(resolvedName)) {
    throw new FloodgateError(
      'FLOODGATE_INVALID_OPTION',
      `name ${show(resolvedName)} must be 1 to 100 printable ASCII characters without quotes or backslashes, like "login"`,
    );
  }
  const capacity = checkBurst(burst, resolvedAlgorithm, limit);
  return Object.freeze({
    name: resolvedName,
    limit,
    windowMs,
    algorithm: resolvedAlgorithm,
    burst: capacity,
    bucket: `${defaults.prefix}${resolvedName}:${algorithmByName(resolvedAlgorithm).tag}`,
  });
}

export function checkAlgorithm(value: unknown): AlgorithmName {
  if (typeof value === 'string' && (ALGORITHM_NAMES as readonly string[]).includes(value)) {
    return value as AlgorithmName;
  }
  const hint = typeof value === 'string' ? closest(value, ALGORITHM_NAMES) : undefined;
  throw new FloodgateError(
    'FLOODGATE_INVALID_ALGORITHM',
    `algorithm ${show(value)} is unknown${hint ? `; did you mean "${hint}"?` : ''}; write one of ${ALGORITHM_NAMES.map((n) => `"${n}"`).join(', ')}`,
  );
}

const BUCKET_ALGORITHMS: readonly AlgorithmName[] = ['token-bucket', 'leaky-bucket', 'gcra'];

function checkBurst(burst: unknown, algorithm: AlgorithmName, limit: number): number {
  if (burst === undefined) return limit;
  if (!BUCKET_ALGORITHMS.includes(algorithm)) {
    throw new FloodgateError(
      'FLOODGATE_INVALID_OPTION',
      `burst applies to ${BUCKET_ALGORITHMS.join(', ')}, not to ${algorithm}; remove it or choose one of those algorithms`,
    );
  }
  if (typeof burst !== 'number' || !Number.isInteger(burst) || burst < 1 || burst > MAX_LIMIT) {
    throw new FloodgateError(
      'FLOODGATE_INVALID_OPTION',
      `burst ${show(burst)} must be a whole number from 1 to ${MAX_LIMIT}, like ${limit}`,
    );
  }
  return burst;
}
