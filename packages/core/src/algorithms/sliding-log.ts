/**
 * Sliding log (exact): every admitted request is remembered with its time and cost; a request is
 * admitted while the cost admitted in the last `windowMs` (times t with t > now - windowMs) plus its
 * own cost is at most `limit`. Exact for any window, at the price of memory: one entry per admitted
 * request still inside the window (so at most `limit` entries).
 *
 * State: [t1, cost1, t2, cost2, ...], oldest first.
 */
import type { Algorithm, AlgorithmState, Policy, StepResult } from '../types.js';
import { ceilMs, exactWait } from './shared.js';

/** The live entries as of `now`: expired ones dropped, future ones (clock went back) pulled to now. */
function live(state: AlgorithmState | undefined, now: number, windowMs: number): number[] {
  const entries: number[] = [];
  if (state === undefined) return entries;
  for (let i = 0; i + 1 < state.length; i += 2) {
    const t = state[i];
    if (t + windowMs <= now) continue;
    entries.push(Math.min(t, now), state[i + 1]);
  }
  return entries;
}

function total(entries: readonly number[]): number {
  let sum = 0;
  for (let i = 1; i < entries.length; i += 2) sum += entries[i];
  return sum;
}

/** A refund takes units back from the newest entries first (the requests being refunded). */
function refundNewest(entries: number[], units: number): void {
  while (units > 0 && entries.length > 0) {
    const last = entries.length - 1;
    const taken = Math.min(units, entries[last]);
    entries[last] -= taken;
    units -= taken;
    if (entries[last] === 0) entries.length -= 2;
  }
}

function admits(state: AlgorithmState | undefined, now: number, policy: Policy, cost: number): boolean {
  return total(live(state, now, policy.windowMs)) + cost <= policy.limit;
}

function untilEmpty(entries: readonly number[], now: number, windowMs: number): number {
  return entries.length > 0 ? ceilMs(entries[entries.length - 2] + windowMs - now) : 0;
}

export const slidingLog: Algorithm = {
  name: 'sliding-log',
  tag: 'sl',
  step(state, now, policy, cost): StepResult {
    const rewound = state !== undefined && state.length >= 2 && state[state.length - 2] > now;
    const { limit, windowMs } = policy;
    const entries = live(state, now, windowMs);
    const used = total(entries);
    if (used + cost <= limit) {
      if (cost > 0) {
        const last = entries.length - 2;
        if (last >= 0 && entries[last] === now) entries[last + 1] += cost;
        else entries.push(now, cost);
      } else if (cost < 0) {
        refundNewest(entries, -cost);
      }
      const resetMs = untilEmpty(entries, now, windowMs);
      return {
        state: entries,
        allowed: true,
        remaining: limit - total(entries),
        resetMs,
        retryAfterMs: 0,
        ttlMs: Math.max(1, resetMs),
        rewound,
      };
    }
    const resetMs = untilEmpty(entries, now, windowMs);
    let retryAfterMs = Math.max(1, resetMs);
    if (cost <= limit) {
      // Wait until the oldest entries holding (used + cost - limit) units have left the window.
      let toFree = used + cost - limit;
      let i = 0;
      while (i < entries.length - 2 && entries[i + 1] < toFree) {
        toFree -= entries[i + 1];
        i += 2;
      }
      retryAfterMs = exactWait(entries[i] + windowMs - now, (wait) =>
        admits(entries, now + wait, policy, cost),
      );
    }
    return {
      state: entries,
      allowed: false,
      remaining: limit - used,
      resetMs,
      retryAfterMs,
      ttlMs: Math.max(1, resetMs),
      rewound,
    };
  },
};
