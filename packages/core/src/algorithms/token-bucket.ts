/**
 * Token bucket: a bucket holds up to `burst` tokens (default `limit`) and refills continuously at
 * `limit` tokens per `windowMs`; a request takes `cost` tokens, or is denied if there are fewer.
 * A new key starts full.
 *
 * State: [tokens, updatedAt].
 */
import type { Algorithm, AlgorithmState, Policy, StepResult } from '../types.js';
import { ceilMs, exactWait, fits, floorUnits } from './shared.js';

function tokensAt(state: AlgorithmState | undefined, now: number, policy: Policy): number {
  if (state === undefined) return policy.burst;
  // min(): an update time in the future means the clock went back; refill nothing rather than go negative.
  const elapsed = now - Math.min(state[1], now);
  return Math.min(policy.burst, state[0] + (elapsed * policy.limit) / policy.windowMs);
}

function admits(state: AlgorithmState | undefined, now: number, policy: Policy, cost: number): boolean {
  return fits(cost, tokensAt(state, now, policy));
}

export const tokenBucket: Algorithm = {
  name: 'token-bucket',
  tag: 'tb',
  step(state, now, policy, cost): StepResult {
    const rewound = state !== undefined && state[1] > now;
    const { limit, windowMs, burst } = policy;
    const msPerToken = windowMs / limit;
    const tokens = tokensAt(state, now, policy);
    if (fits(cost, tokens)) {
      // Clamped both ways: the slack in fits() may take a hair below zero; a refund stops at the capacity.
      const left = Math.min(burst, Math.max(0, tokens - cost));
      const resetMs = ceilMs((burst - left) * msPerToken);
      return {
        state: [left, now],
        allowed: true,
        remaining: floorUnits(left),
        resetMs,
        retryAfterMs: 0,
        ttlMs: Math.max(1, resetMs),
        rewound,
      };
    }
    const resetMs = ceilMs((burst - tokens) * msPerToken);
    // Waits are measured from the state as it stands now (clamped if the clock went back), which is
    // what a store keeps after this denial, so the promised retry holds.
    const standing = [tokens, now];
    return {
      state: standing,
      allowed: false,
      remaining: floorUnits(tokens),
      resetMs,
      retryAfterMs:
        cost > burst
          ? Math.max(1, resetMs)
          : exactWait((cost - tokens) * msPerToken, (wait) => admits(standing, now + wait, policy, cost)),
      ttlMs: Math.max(1, resetMs),
      rewound,
    };
  },
};
