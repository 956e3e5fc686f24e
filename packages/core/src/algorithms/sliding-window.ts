/**
 * Sliding window (weighted counter), the default: windows of `windowMs` aligned to the epoch; the
 * count of the previous window is weighted by the part of it still inside the sliding window:
 * estimate = previous * (1 - elapsed / windowMs) + current. Admits while estimate + cost <= limit.
 * It never admits more than `limit` in one aligned window and at most 2 x `limit` in any sliding one;
 * under steady traffic its error is a few percent (docs/algorithms.md).
 *
 * State: [windowStart, previousCount, currentCount].
 */
import type { AlgorithmState, Policy, StepResult } from '../types.js';
import {
  admitted,
  ceilMs,
  denied,
  floorUnits,
  type ReusableStepResult,
  type ReusingAlgorithm,
  resultFor,
} from './shared.js';

/** How a stored state relates to the aligned window that holds `now`. */
const FRESH = 0; // no state, or older than the previous window: both counts are 0
const SAME = 1; // the state is this window's: [start, previous, current] as stored
const PREVIOUS = 2; // the state is the previous window's: its current count becomes the previous one

function relation(state: AlgorithmState | undefined, start: number, windowMs: number): number {
  if (state === undefined) return FRESH;
  if (state[0] === start) return SAME;
  if (state[0] === start - windowMs) return PREVIOUS;
  // A window in the future means the clock went back: keep the counts, relabelled to this window,
  // so the key frees up within two windows instead of staying blocked.
  if (state[0] > start) return SAME;
  return FRESH;
}

/**
 * The start of the aligned window that holds `now`. A stored window that holds now is that window:
 * its start, a multiple of windowMs, without a division. For times in whole µs it is exactly what
 * the division gives; with finer fractions the two can differ only within ~0.2 µs before a window's
 * end (at epoch-sized times), where the division rounds up to the next window and this keeps the
 * one that holds now.
 */
function windowStart(state: AlgorithmState | undefined, now: number, windowMs: number): number {
  const stored = state === undefined ? Number.NaN : state[0];
  return stored <= now && now < stored + windowMs ? stored : Math.floor(now / windowMs) * windowMs;
}

/** [windowStart, previous, current] as of `now`. */
function current(state: AlgorithmState | undefined, now: number, windowMs: number): [number, number, number] {
  const start = windowStart(state, now, windowMs);
  const how = relation(state, start, windowMs);
  if (how === SAME) return [start, (state as AlgorithmState)[1], (state as AlgorithmState)[2]];
  if (how === PREVIOUS) return [start, (state as AlgorithmState)[2], 0];
  return [start, 0, 0];
}

function estimate(now: number, windowMs: number, start: number, previous: number, count: number): number {
  // No previous count weighs nothing: the same value, without a division.
  if (previous === 0) return count;
  return (previous * (windowMs - (now - start))) / windowMs + count;
}

function admits(state: AlgorithmState | undefined, now: number, policy: Policy, cost: number): boolean {
  const [start, previous, count] = current(state, now, policy.windowMs);
  return estimate(now, policy.windowMs, start, previous, count) + cost <= policy.limit;
}

function untilEmpty(now: number, windowMs: number, start: number, previous: number, count: number): number {
  if (count > 0) return ceilMs(start + 2 * windowMs - now);
  if (previous > 0) return ceilMs(start + windowMs - now);
  return 0;
}

export const slidingWindow: ReusingAlgorithm = {
  name: 'sliding-window',
  tag: 'sw',
  step(state, now, policy, cost, into): StepResult {
    const { limit, windowMs } = policy;
    // current(), unrolled: this is the hot path of the default algorithm, and the tuple costs ~10 ns.
    const start = windowStart(state, now, windowMs);
    const rewound = state !== undefined && state[0] > start;
    const how = relation(state, start, windowMs);
    const previous =
      how === SAME ? (state as AlgorithmState)[1] : how === PREVIOUS ? (state as AlgorithmState)[2] : 0;
    const count = how === SAME ? (state as AlgorithmState)[2] : 0;
    const used = estimate(now, windowMs, start, previous, count);
    const out = resultFor(into, 3);
    out.rewound = rewound;
    if (used + cost <= limit) {
      // A negative cost is a refund: it comes off this window's count, never below zero.
      const counted = Math.max(0, count + cost);
      const resetMs = untilEmpty(now, windowMs, start, previous, counted);
      out.state[0] = start;
      out.state[1] = previous;
      out.state[2] = counted;
      return admitted(out, floorUnits(limit - used - (counted - count)), resetMs, Math.max(1, resetMs));
    }
    return deny(out, now, policy, cost, start, previous, count, used);
  },
};

/**
 * step()'s denial, apart so that step stays under V8's size limit for inlining: inlined into the
 * stores' hot paths, an admission skips a call (measured: the sliding window had been ~10 ns per
 * check behind the fixed window, whose step was inlined).
 */
function deny(
  out: ReusableStepResult,
  now: number,
  policy: Policy,
  cost: number,
  start: number,
  previous: number,
  count: number,
  used: number,
): StepResult {
  const { limit, windowMs } = policy;
  const resetMs = untilEmpty(now, windowMs, start, previous, count);
  let guess: number;
  if (count + cost <= limit) {
    // The previous window's weight must fall until the cost fits beside this window's count.
    guess = start + windowMs * (1 - (limit - count - cost) / previous) - now;
  } else {
    // This window's count must become the previous one and fade enough.
    guess = start + windowMs + windowMs * (1 - (limit - cost) / count) - now;
  }
  // Waits are measured from the state as it stands now (clamped if the clock went back), which is
  // what a store keeps after this denial, so the promised retry holds.
  const standing = [start, previous, count];
  out.state[0] = start;
  out.state[1] = previous;
  out.state[2] = count;
  return denied(out, floorUnits(limit - used), resetMs, cost > limit, guess, (wait) =>
    admits(standing, now + wait, policy, cost),
  );
}
