/**
 * Token bucket: a bucket holds up to `burst` tokens (default `limit`) and refills continuously at
 * `limit` tokens per `windowMs`; a request takes `cost` tokens, or is denied if there are fewer.
 * A new key starts full.
 *
 * State: [tokens, updatedAt].
 */
import type { AlgorithmState, Policy, StepResult } from '../types.js';
import { admitted, ceilMs, denied, fits, floorUnits, type ReusingAlgorithm, resultFor } from './shared.js';

function tokensAt(state: AlgorithmState | undefined, now: number, policy: Policy): number {
  if (state === undefined) return policy.burst;
  // min(): an update time in the future means the clock went back; refill nothing rather than go negative.
  const elapsed = now - Math.min(state[1], now);
  return Math.min(policy.burst, state[0] + (elapsed * policy.limit) / policy.windowMs);
}

function admits(state: AlgorithmState | undefined, now: number, policy: Policy, cost: number): boolean {
  return fits(cost, tokensAt(state, now, policy));
}

export const tokenBucket: ReusingAlgorithm = {
  name: 'token-bucket',
  tag: 'tb',
  step(state, now, policy, cost, into): StepResult {
    const rewound = state !== undefined && state[1] > now;
    const { limit, windowMs, burst } = policy;
    const msPerToken = windowMs / limit;
    const tokens = tokensAt(state, now, policy);
    const out = resultFor(into, 2);
    out.rewound = rewound;
    if (fits(cost, tokens)) {
      // Clamped both ways: the slack in fits() may take a hair below zero; a refund stops at the capacity.
      const left = Math.min(burst, Math.max(0, tokens - cost));
      const resetMs = ceilMs((burst - left) * msPerToken);
      out.state[0] = left;
      out.state[1] = now;
      return admitted(out, floorUnits(left), resetMs, Math.max(1, resetMs));
    }
    const resetMs = ceilMs((burst - tokens) * msPerToken);
    // Waits are measured from the state as it stands now (clamped if the clock went back), which is
    // what a store keeps after this denial, so the promised retry holds.
    const standing = [tokens, now];
    out.state[0] = tokens;
    out.state[1] = now;
    return denied(out, floorUnits(tokens), resetMs, cost > burst, (cost - tokens) * msPerToken, (wait) =>
      admits(standing, now + wait, policy, cost),
    );
  },
};
