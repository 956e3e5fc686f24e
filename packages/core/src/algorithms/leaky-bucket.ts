/**
 * Leaky bucket, as a meter: each request pours `cost` into a bucket of capacity `burst` (default
 * `limit`) that drains continuously at `limit` per `windowMs`; a request that would overflow it is
 * denied. It admits exactly what a token bucket of the same capacity admits (the level is the
 * capacity minus the tokens), and it answers 429 instead of delaying requests.
 *
 * State: [level, updatedAt].
 */
import type { AlgorithmState, Policy, StepResult } from '../types.js';
import { admitted, ceilMs, denied, fits, floorUnits, type ReusingAlgorithm, resultFor } from './shared.js';

function levelAt(state: AlgorithmState | undefined, now: number, policy: Policy): number {
  if (state === undefined) return 0;
  // min(): an update time in the future means the clock went back; drain nothing rather than go negative.
  const elapsed = now - Math.min(state[1], now);
  return Math.max(0, state[0] - (elapsed * policy.limit) / policy.windowMs);
}

function admits(state: AlgorithmState | undefined, now: number, policy: Policy, cost: number): boolean {
  return fits(levelAt(state, now, policy) + cost, policy.burst);
}

export const leakyBucket: ReusingAlgorithm = {
  name: 'leaky-bucket',
  tag: 'lb',
  step(state, now, policy, cost, into): StepResult {
    const rewound = state !== undefined && state[1] > now;
    const { limit, windowMs, burst } = policy;
    const msPerUnit = windowMs / limit;
    const level = levelAt(state, now, policy);
    const out = resultFor(into, 2);
    out.rewound = rewound;
    if (fits(level + cost, burst)) {
      // Clamped both ways: a refund stops at empty; the slack in fits() may go a hair over the capacity.
      const filled = Math.min(burst, Math.max(0, level + cost));
      const resetMs = ceilMs(filled * msPerUnit);
      out.state[0] = filled;
      out.state[1] = now;
      return admitted(out, floorUnits(burst - filled), resetMs, Math.max(1, resetMs));
    }
    const resetMs = ceilMs(level * msPerUnit);
    // Waits are measured from the state as it stands now (clamped if the clock went back), which is
    // what a store keeps after this denial, so the promised retry holds.
    const standing = [level, now];
    out.state[0] = level;
    out.state[1] = now;
    return denied(
      out,
      floorUnits(burst - level),
      resetMs,
      cost > burst,
      (level + cost - burst) * msPerUnit,
      (wait) => admits(standing, now + wait, policy, cost),
    );
  },
};
