/** Per-policy results -> the one Decision a caller sees (DESIGN.md "The Decision, pinned down"). */
import type { Decision, Degraded, Policy, PolicyDecision } from './types.js';

/**
 * The top-level fields describe the most restrictive policy: of those that denied, the one with the
 * longest wait (the call passes only once every policy admits it); if none denied, the one with the
 * least remaining.
 */
export function toDecision(
  decisions: readonly PolicyDecision[],
  degraded: Degraded,
  exceedsLimit: boolean,
): Decision {
  let top = decisions[0];
  let allowed = top.allowed;
  for (let i = 1; i < decisions.length; i++) {
    const d = decisions[i];
    if (!d.allowed) {
      if (allowed || d.retryAfterMs > top.retryAfterMs) top = d;
      allowed = false;
    } else if (allowed && d.remaining < top.remaining) {
      top = d;
    }
  }
  return {
    allowed,
    limit: top.limit,
    remaining: top.remaining,
    resetMs: top.resetMs,
    retryAfterMs: top.retryAfterMs,
    policy: top.policy,
    policies: decisions,
    degraded,
    exceedsLimit,
  };
}

/**
 * A Decision made without the store (it failed and no fallback decided). It invents no counts:
 * `remaining` is the full limit when failing open and 0 when failing closed; adapters send no
 * RateLimit headers for such decisions.
 */
export function storeFailureDecision(
  policies: readonly Policy[],
  mode: 'open' | 'closed',
  retryAfterMs: number,
): Decision {
  const allowed = mode === 'open';
  const decisions = policies.map(
    (policy): PolicyDecision => ({
      policy: policy.name,
      limit: policy.limit,
      windowMs: policy.windowMs,
      allowed,
      remaining: allowed ? policy.limit : 0,
      resetMs: 0,
      retryAfterMs: allowed ? 0 : retryAfterMs,
    }),
  );
  return toDecision(decisions, mode, false);
}
