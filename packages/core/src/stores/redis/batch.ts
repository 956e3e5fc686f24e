/**
 * A batch of checks as one script call: the arguments lua/check.lua reads (its ARGV and KEYS), and
 * its flat reply back into each check's decisions. The two sides of this format live here and in
 * check.lua; a change to one is a change to the other.
 */
import { ALGORITHMS } from '../../algorithms/index.js';
import type { FloodgateError } from '../../errors.js';
import type { Policy, PolicyDecision } from '../../types.js';

/** One queued check: its Redis keys (one per policy) and how to answer its caller. */
export interface Check {
  readonly keys: string[];
  readonly policies: readonly Policy[];
  /** A cost, or 'p' for peek. */
  readonly op: string;
  /** The caller's clock reading, or '' for Redis TIME. */
  readonly now: string;
  readonly resolve: (decisions: PolicyDecision[]) => void;
  readonly reject: (error: FloodgateError) => void;
}

export class BatchEncoder {
  private headerPolicies: readonly Policy[] | undefined;
  private headerText = '';

  /** `floorTtl`: the TTL floor the script keeps keys for when the clock is the caller's ('0' for Redis TIME). */
  constructor(private readonly floorTtl: string) {}

  /**
   * The script call's arguments for `batch` (`keyCount`: its checks' keys together), with args[0]
   * left for the function name or script sha. Consecutive checks with the same policies, op and
   * clock reading (the usual case: one route, cost 1, Redis time) travel as one run, so a batch
   * costs a few arguments plus its keys rather than several arguments per check. The header and run
   * texts repeat from call to call, so the Redis Function parses each once (see lua/check.lua): a
   * lone check is its key and three arguments.
   */
  encode(batch: readonly Check[], keyCount: number): string[] {
    // Sized for one run, the usual batch (and every lone check): further runs and the repeated
    // keys are pushed.
    const args: string[] = new Array(5 + keyCount);
    args[0] = '';
    args[1] = String(keyCount);
    // args[2 + keyCount]: the header (the clock's TTL floor and the batch's policy sets), below.
    let k = 2;
    let at = 3 + keyCount; // where the next run goes
    const firstPolicies = batch[0].policies;
    let lastPolicies = firstPolicies;
    let lastIndex = 1;
    /** The sets after the first, when a batch mixes routes. */
    let sets: Map<readonly Policy[], number> | undefined;
    let extraSets = '';
    let runStart = 0;
    for (let c = 0; c < batch.length; c++) {
      const check = batch[c];
      const checkKeys = check.keys;
      for (let i = 0; i < checkKeys.length; i++) args[k++] = checkKeys[i];
      const next = batch[c + 1];
      if (
        next !== undefined &&
        next.policies === check.policies &&
        next.op === check.op &&
        next.now === check.now
      ) {
        continue; // the run goes on
      }
      const policies = check.policies;
      let index: number | undefined;
      if (policies === lastPolicies) index = lastIndex;
      else if (policies === firstPolicies) index = 1;
      else {
        sets ??= new Map();
        index = sets.get(policies);
        if (index === undefined) {
          index = sets.size + 2;
          sets.set(policies, index);
          extraSets += `|${setArgument(policies)}`;
        }
      }
      lastPolicies = policies;
      lastIndex = index;
      const run = `${c + 1 - runStart},${index},${check.op}`;
      if (at < args.length) {
        args[at] = run;
        args[at + 1] = check.now;
      } else {
        args.push(run, check.now);
      }
      at += 2;
      runStart = c + 1;
    }
    args[2 + keyCount] = this.header(firstPolicies) + extraSets;
    if (batch.length > 1) {
      // Keys that appear again (the same client twice in a batch) point the script at their first
      // position, so a later check sees an earlier one's write.
      const seen = new Map<string, number>();
      let dups = '';
      for (let j = 2; j < 2 + keyCount; j++) {
        const first = seen.get(args[j]);
        if (first === undefined) seen.set(args[j], j - 1);
        else dups += `${dups === '' ? '' : ','}${j - 1}:${first}`;
      }
      if (dups !== '') args.push(dups);
    }
    return args;
  }

  /** The header of a batch whose first policy set is `policies`: kept for the last set seen (a route's). */
  private header(policies: readonly Policy[]): string {
    if (policies !== this.headerPolicies) {
      this.headerText = `${this.floorTtl}|${setArgument(policies)}`;
      this.headerPolicies = policies;
    }
    return this.headerText;
  }
}

/**
 * Answer each check of `batch` from the script's reply: per check, per policy, remaining, resetMs
 * and retryAfterMs. False, with no check answered, if the reply is not that.
 */
export function answerBatch(batch: readonly Check[], keyCount: number, reply: unknown): boolean {
  if (!Array.isArray(reply) || reply.length !== 3 * keyCount) return false;
  let at = 0;
  for (let c = 0; c < batch.length; c++) {
    const check = batch[c];
    const policies = check.policies;
    const decisions: PolicyDecision[] = new Array(policies.length);
    for (let i = 0; i < policies.length; i++) {
      const policy = policies[i];
      decisions[i] = {
        policy: policy.name,
        limit: policy.limit,
        windowMs: policy.windowMs,
        // Admitted is no wait: every denial waits at least 1 ms (lua/check.lua sends no flag).
        allowed: reply[at + 2] === 0,
        remaining: reply[at] as number,
        resetMs: reply[at + 1] as number,
        retryAfterMs: reply[at + 2] as number,
      };
      at += 3;
    }
    check.resolve(decisions);
  }
  return true;
}

const setArgumentCache = new WeakMap<readonly Policy[], string>();

/** A route's policies as the script reads them: "tag,limit,windowMs,burst" joined by ';'; cached per policies array. */
function setArgument(policies: readonly Policy[]): string {
  let text = setArgumentCache.get(policies);
  if (text === undefined) {
    text = policies
      .map(
        (policy) => `${ALGORITHMS[policy.algorithm].tag},${policy.limit},${policy.windowMs},${policy.burst}`,
      )
      .join(';');
    setArgumentCache.set(policies, text);
  }
  return text;
}
