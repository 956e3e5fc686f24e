/**
 * GCRA (generic cell rate algorithm): each unit of cost advances the key's theoretical arrival
 * time (TAT) by the emission interval T = windowMs / limit; a request is admitted while the advanced
 * TAT is at most `burst` x T ahead of now (burst defaults to limit). Same admissions as a token
 * bucket of capacity `burst`.
 *
 * State: [anchor, units] with TAT = anchor + units x T. Keeping the TAT as a start time plus a whole
 * number of intervals, rather than one epoch-sized float, keeps it exact: adding a fraction of a
 * millisecond to 1.7e12 would round it away on every step, and the error would pile up at high rates.
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

/**
 * [anchor, units] as of `now`, written into `at`: one array for every call (a step reads it at once),
 * as a new tuple per check was a measurable part of the step's cost.
 */
const at = [0, 0];

/** [anchor, units] as of `now` (into `at`): a TAT in the past restarts at now with nothing outstanding. */
function current(state: AlgorithmState | undefined, now: number, policy: Policy): void {
  let anchor = now;
  let units = 0;
  if (state !== undefined) {
    anchor = state[0];
    units = state[1];
    if (anchor > now) {
      // The clock went back: restart from now, with no more outstanding than the burst, so no key
      // is blocked longer than it takes to refill the burst.
      anchor = now;
      units = Math.min(units, policy.burst);
    }
    if (anchor + (units * policy.windowMs) / policy.limit <= now) {
      anchor = now;
      units = 0;
    }
  }
  at[0] = anchor;
  at[1] = units;
}

/**
 * How far the TAT would be ahead of now after spending `cost`, in ms x limit. Scaling by the limit
 * keeps whole numbers whole: (units + cost) x windowMs is an exact integer, and (now - anchor) x
 * limit is exact for whole-millisecond times, so boundaries land exactly where they should.
 */
function scaledAhead(anchor: number, units: number, now: number, policy: Policy, cost: number): number {
  return (units + cost) * policy.windowMs - (now - anchor) * policy.limit;
}

function admits(state: AlgorithmState | undefined, now: number, policy: Policy, cost: number): boolean {
  current(state, now, policy);
  return scaledAhead(at[0], at[1], now, policy, cost) <= policy.burst * policy.windowMs;
}

export const gcra: ReusingAlgorithm = {
  name: 'gcra',
  tag: 'gcra',
  step(state, now, policy, cost, into): StepResult {
    const rewound = state !== undefined && state[0] > now;
    const { limit, windowMs, burst } = policy;
    const tolerance = burst * windowMs;
    current(state, now, policy);
    const anchor = at[0];
    const units = at[1];
    const after = scaledAhead(anchor, units, now, policy, cost);
    const out = resultFor(into, 2);
    out.rewound = rewound;
    if (after <= tolerance) {
      // A refund that takes the TAT back past now leaves nothing outstanding.
      const kept = Math.max(0, after);
      const resetMs = ceilMs(kept / limit);
      out.state[0] = kept > 0 ? anchor : now;
      out.state[1] = kept > 0 ? units + cost : 0;
      return admitted(out, floorUnits((tolerance - kept) / windowMs), resetMs, Math.max(1, resetMs));
    }
    return deny(out, now, policy, cost, anchor, units, after);
  },
};

/** step()'s denial, apart so that step stays under V8's size limit for inlining (see sliding-window.ts). */
function deny(
  out: ReusableStepResult,
  now: number,
  policy: Policy,
  cost: number,
  anchor: number,
  units: number,
  after: number,
): StepResult {
  const { limit, windowMs, burst } = policy;
  const tolerance = burst * windowMs;
  const outstanding = scaledAhead(anchor, units, now, policy, 0);
  const resetMs = ceilMs(outstanding / limit);
  // Waits are measured from the state as it stands now (clamped if the clock went back), which is
  // what a store keeps after this denial, so the promised retry holds.
  const standing = [anchor, units];
  out.state[0] = anchor;
  out.state[1] = units;
  return denied(
    out,
    floorUnits((tolerance - outstanding) / windowMs),
    resetMs,
    cost > burst,
    (after - tolerance) / limit,
    (wait) => admits(standing, now + wait, policy, cost),
  );
}
