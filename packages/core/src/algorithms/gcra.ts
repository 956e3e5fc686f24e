/**
 * GCRA (generic cell rate algorithm): one number per key, the theoretical arrival time (TAT).
 * Each unit of cost advances it by the emission interval T = windowMs / limit; a request is
 * admitted while the advanced TAT is at most `burst` x T ahead of now (burst defaults to limit).
 * Same admissions as a token bucket of capacity `burst`, in one stored number.
 *
 * State: [tat].
 */
import type { Algorithm, AlgorithmState, Policy, StepResult } from '../types.js';
import { ceilMs, exactWait, floorUnits } from './shared.js';

function tatAt(state: AlgorithmState | undefined, now: number, policy: Policy): number {
  if (state === undefined) return now;
  // A TAT further ahead than the whole burst means the clock went back: cap it, so no key is blocked
  // longer than it takes to refill the burst.
  const horizon = now + (policy.burst * policy.windowMs) / policy.limit;
  return Math.max(now, Math.min(state[0], horizon));
}

function admits(state: AlgorithmState | undefined, now: number, policy: Policy, cost: number): boolean {
  const interval = policy.windowMs / policy.limit;
  return tatAt(state, now, policy) + cost * interval - now <= policy.burst * interval;
}

export const gcra: Algorithm = {
  name: 'gcra',
  tag: 'gcra',
  step(state, now, policy, cost): StepResult {
    const { limit, windowMs, burst } = policy;
    const interval = windowMs / limit;
    const tolerance = burst * interval;
    const tat = tatAt(state, now, policy);
    const next = Math.max(now, tat + cost * interval); // a negative cost refunds, back to now at most
    if (next - now <= tolerance) {
      const resetMs = ceilMs(next - now);
      return {
        state: [next],
        allowed: true,
        remaining: floorUnits(burst - (next - now) / interval),
        resetMs,
        retryAfterMs: 0,
        ttlMs: Math.max(1, resetMs),
      };
    }
    const resetMs = ceilMs(tat - now);
    return {
      state: [tat],
      allowed: false,
      remaining: floorUnits(burst - (tat - now) / interval),
      resetMs,
      retryAfterMs:
        cost > burst
          ? Math.max(1, resetMs)
          : exactWait(next - tolerance - now, (wait) => admits(state, now + wait, policy, cost)),
      ttlMs: Math.max(1, resetMs),
    };
  },
};
