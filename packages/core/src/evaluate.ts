/**
 * Several policies, one decision: shared by every store that runs the TypeScript algorithms
 * (memory, SQLite), so they cannot disagree. The Redis scripts implement the same rule in Lua.
 */
import { ALGORITHMS, type ReusableStepResult } from './algorithms/index.js';
import type { AlgorithmState, Policy, PolicyDecision, StepResult } from './types.js';

export interface Evaluation {
  readonly allowed: boolean;
  readonly decisions: PolicyDecision[];
  /**
   * One step per policy: on an admission, the states to write (with their TTLs); on a denial, each
   * policy's state as it stands now (nothing consumed), to be written only where `rewound` is set.
   */
  readonly steps: StepResult[];
}

export function toPolicyDecision(policy: Policy, step: StepResult): PolicyDecision {
  return {
    policy: policy.name,
    limit: policy.limit,
    windowMs: policy.windowMs,
    allowed: step.allowed,
    remaining: step.remaining,
    resetMs: step.resetMs,
    retryAfterMs: step.retryAfterMs,
  };
}

/**
 * What an evaluation may overwrite instead of allocating, for a caller that evaluates the same
 * policies again and again and copies out what it keeps before the next call (the memory store).
 */
export interface EvaluationScratch {
  /** Becomes the evaluation's `steps`. */
  readonly steps: StepResult[];
  /** Per policy, a result its algorithm's step overwrites (undefined: the step allocates one). */
  readonly results: ReadonlyArray<ReusableStepResult | undefined>;
}

/**
 * Admit only if every policy admits; a denial consumes nothing, so the policies that would have
 * admitted report what they have left now (a step of cost 0) rather than after the cost.
 */
export function evaluate(
  policies: readonly Policy[],
  states: ReadonlyArray<AlgorithmState | undefined>,
  now: number,
  cost: number,
  scratch?: EvaluationScratch,
): Evaluation {
  const steps: StepResult[] = scratch ? scratch.steps : new Array(policies.length);
  let allowed = true;
  for (let i = 0; i < policies.length; i++) {
    const into = scratch?.results[i];
    const step = ALGORITHMS[policies[i].algorithm].step(states[i], now, policies[i], cost, into);
    steps[i] = step;
    if (!step.allowed) allowed = false;
  }
  const decisions: PolicyDecision[] = new Array(policies.length);
  for (let i = 0; i < policies.length; i++) {
    // The step of cost 0 may overwrite the same reused result: the step of full cost is not needed.
    if (!allowed && steps[i].allowed) {
      steps[i] = ALGORITHMS[policies[i].algorithm].step(states[i], now, policies[i], 0, scratch?.results[i]);
    }
    decisions[i] = toPolicyDecision(policies[i], steps[i]);
  }
  return { allowed, decisions, steps };
}

/**
 * What `peek` reports for one policy: `remaining` and `resetMs` as they stand (a step of cost 0),
 * `allowed` and `retryAfterMs` for a call of cost 1.
 */
export function peekPolicy(policy: Policy, state: AlgorithmState | undefined, now: number): PolicyDecision {
  const algorithm = ALGORITHMS[policy.algorithm];
  const standing = algorithm.step(state, now, policy, 0);
  const next = algorithm.step(state, now, policy, 1);
  return {
    policy: policy.name,
    limit: policy.limit,
    windowMs: policy.windowMs,
    allowed: next.allowed,
    remaining: standing.remaining,
    resetMs: standing.resetMs,
    retryAfterMs: next.retryAfterMs,
  };
}
