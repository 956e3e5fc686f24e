/**
 * Arithmetic shared by the algorithms. Redis scripts mirror these helpers line for line
 * (stores/redis/lua/shared.lua), so a change here is a change there. The reusable result below is
 * TypeScript's alone: the Lua steps return their figures as values.
 */
import type { Algorithm, AlgorithmState, Policy, StepResult } from '../types.js';

/** A StepResult its caller keeps and passes back in, for the step to overwrite (see ReusingAlgorithm). */
export interface ReusableStepResult {
  state: number[];
  allowed: boolean;
  remaining: number;
  resetMs: number;
  retryAfterMs: number;
  ttlMs: number;
  rewound: boolean;
}

/**
 * An algorithm whose step can overwrite a result its caller passes in (`into`, from an earlier call
 * of the same algorithm) instead of allocating one: the memory store's hot path does, as the result
 * and its state array are two of the few objects a check allocates (measured here: 3-5% of an
 * awaited one-key Limiter.consume). Without `into` the step is pure; with it, the only effect is on
 * `into`, which the caller must copy out before the next call, and `into.state` must not be the
 * `state` passed in. Every algorithm with a fixed-size state does this; the sliding log, whose state
 * grows, ignores `into`.
 */
export interface ReusingAlgorithm extends Algorithm {
  step(
    state: AlgorithmState | undefined,
    nowMs: number,
    policy: Policy,
    cost: number,
    into?: ReusableStepResult,
  ): StepResult;
}

/** `into`, or a new result with a state of `size` numbers, for a step to fill in. */
export function resultFor(into: ReusableStepResult | undefined, size: 2 | 3): ReusableStepResult {
  if (into !== undefined) return into;
  return {
    state: size === 3 ? [0, 0, 0] : [0, 0],
    allowed: false,
    remaining: 0,
    resetMs: 0,
    retryAfterMs: 0,
    ttlMs: 1,
    rewound: false,
  };
}

/** `out`, filled in as an admission (its state written by the step): nothing to wait for. */
export function admitted(
  out: ReusableStepResult,
  remaining: number,
  resetMs: number,
  ttlMs: number,
): StepResult {
  out.allowed = true;
  out.remaining = remaining;
  out.resetMs = resetMs;
  out.retryAfterMs = 0;
  out.ttlMs = ttlMs;
  return out;
}

/**
 * `out`, filled in as a denial (its state written by the step, as it stands now). The wait is exact
 * (exactWait, from the step's guess) unless the cost can never fit, when no wait helps: then it is
 * the time until the state is empty, at least 1 ms.
 */
export function denied(
  out: ReusableStepResult,
  remaining: number,
  resetMs: number,
  neverFits: boolean,
  guessMs: number,
  admitsAfter: (waitMs: number) => boolean,
): StepResult {
  out.allowed = false;
  out.remaining = remaining;
  out.resetMs = resetMs;
  out.retryAfterMs = neverFits ? Math.max(1, resetMs) : exactWait(guessMs, admitsAfter);
  out.ttlMs = Math.max(1, resetMs);
  return out;
}

/** Whole milliseconds, rounded up, never negative: used for resetMs. */
export function ceilMs(ms: number): number {
  // max(): Math.ceil(-1e-10) is -0, which is not the 0 callers compare with.
  return ms > 0 ? Math.max(0, Math.ceil(ms - 1e-9)) : 0;
}

/** Whole units left, rounded down, never negative. The tiny slack absorbs float noise like 2.9999999999. */
export function floorUnits(units: number): number {
  return units > 0 ? Math.floor(units + 1e-9) : 0;
}

/**
 * The exact wait in whole milliseconds before `admitsAfter(wait)` holds, starting from an
 * analytic guess. Checking the guess against the admission test itself makes the promise exact
 * whatever the float rounding: a retry after the returned wait passes, one 1 ms earlier fails.
 * The guess is within a millisecond, so the loops run at most a couple of times.
 */
export function exactWait(guessMs: number, admitsAfter: (waitMs: number) => boolean): number {
  let wait = Math.max(1, Math.ceil(guessMs));
  for (let i = 0; i < 4 && !admitsAfter(wait); i++) wait++;
  for (let i = 0; i < 4 && wait > 1 && admitsAfter(wait - 1); i++) wait--;
  return wait;
}

/**
 * Whether `amount` fits in `capacity`, forgiving float noise of a billionth of the capacity.
 * Token and leaky buckets keep fractional units (refill is continuous), so 1 - 0.874 can come out
 * as 0.12599999999999989; without the slack a request due at exactly that moment would be refused.
 */
export function fits(amount: number, capacity: number): boolean {
  return amount - capacity <= 1e-9 * Math.max(1, capacity);
}
