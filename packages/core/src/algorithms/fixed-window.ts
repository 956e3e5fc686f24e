/**
 * Fixed window: a window of `windowMs` starts at a key's first counted request and admits up to
 * `limit` units; the next request after it ends opens a new one.
 *
 * A negative cost gives units back (a refund), never below zero.
 *
 * State: [windowStart, count].
 */
import type { AlgorithmState, Policy, StepResult } from '../types.js';
import { admitted, ceilMs, denied, type ReusingAlgorithm, resultFor } from './shared.js';

/**
 * [windowStart, count] as of `now`, written into `at`: one array for every call (a step reads it at
 * once), as a new tuple per check was a measurable part of the step's cost.
 */
const at = [0, 0];

function current(state: AlgorithmState | undefined, now: number, windowMs: number): void {
  // A start in the future means the clock went back: restart the window at now so the key is never
  // blocked for longer than one window.
  if (state === undefined || now >= state[0] + windowMs) {
    at[0] = now;
    at[1] = 0;
  } else {
    at[0] = Math.min(state[0], now);
    at[1] = state[1];
  }
}

function admits(state: AlgorithmState | undefined, now: number, policy: Policy, cost: number): boolean {
  current(state, now, policy.windowMs);
  return at[1] + cost <= policy.limit;
}

export const fixedWindow: ReusingAlgorithm = {
  name: 'fixed-window',
  tag: 'fw',
  step(state, now, policy, cost, into): StepResult {
    const rewound = state !== undefined && state[0] > now;
    const { limit, windowMs } = policy;
    current(state, now, windowMs);
    const start = at[0];
    const count = at[1];
    const untilEnd = start + windowMs - now;
    const out = resultFor(into, 2);
    out.rewound = rewound;
    if (count + cost <= limit) {
      const used = Math.max(0, count + cost);
      out.state[0] = start;
      out.state[1] = used;
      return admitted(out, limit - used, used > 0 ? ceilMs(untilEnd) : 0, Math.max(1, ceilMs(untilEnd)));
    }
    const resetMs = ceilMs(untilEnd);
    // Waits are measured from the state as it stands now (clamped if the clock went back), which is
    // what a store keeps after this denial, so the promised retry holds.
    const standing = [start, count];
    out.state[0] = start;
    out.state[1] = count;
    return denied(out, limit - count, resetMs, cost > limit, untilEnd, (wait) =>
      admits(standing, now + wait, policy, cost),
    );
  },
};
