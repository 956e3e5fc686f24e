/**
 * When the SQLite store commits: the calls that arrive together are gathered into one group, which
 * the store runs in one write transaction (group commit). This module only decides when a group is
 * ready and how large it may be; what a group does is the store's `commit` callback.
 *
 * A group is committed at the next turn of the event loop (setImmediate), so every call made in the
 * current turn joins it. After a commit, the callers it answered usually call again within a few
 * microtasks (a loop awaiting one check after another): those calls are looked for after
 * LOOK_HOPS microtasks and committed at once, instead of waiting for the loop's turn.
 *
 * When another connection holds the write lock past the store's short blocking wait, the group is
 * kept, ahead of the calls that arrive meanwhile, and tried again after a timer: the event loop
 * runs in between. A group that times out (the store's busyTimeoutMs) takes the calls queued behind
 * it along (see failQueued).
 */
import { performance } from 'node:perf_hooks';
import { microtask } from '../../microtask.js';
import { DEFERRED_RETRY_MS } from './write-transaction.js';

/**
 * What a commit did with its group: settled every call in it (committed, or failed for a reason
 * other than the lock); ran nothing, the write lock being taken (`waiting`: try again later); or
 * failed every call, the lock having been taken for the store's whole busy timeout (`timed-out`).
 */
export type CommitOutcome = 'settled' | 'waiting' | 'timed-out';

/** Most calls in one transaction: bounds how long one group holds the write lock. */
const MAX_GROUP = 1024;
/**
 * After a group commits, the store waits this many microtask hops for the callers it answered to
 * make their next calls, and commits those at once instead of at the next turn of the event loop: a
 * caller checking one key after another would otherwise pay a loop turn per check (~3.5 µs here, a
 * tenth of a lone check). Measured: a caller awaiting the store calls again 1 hop after the commit,
 * one awaiting a Limiter's Decision 2; 8 leaves room for a few async functions in between. Calls
 * that arrive from I/O, as HTTP requests do, are in no such chain and still gather in the turn's group.
 */
const LOOK_HOPS = 8;
/**
 * Longest stretch of groups committed from microtasks before the store lets the event loop turn, so
 * that I/O and timers still run when callers keep it busy.
 */
const LOOK_BUDGET_MS = 1;

export class GroupCommit<T> {
  private pending: T[] = [];
  /** A commit waits for the event loop's turn (setImmediate). */
  private scheduled = false;
  /** Microtask hops left before the look for calls made by the callers just answered (see LOOK_HOPS). */
  private hopsLeft = 0;
  /** When the current stretch of groups committed from microtasks began (0: none). */
  private lookingSince = 0;
  private stopped = false;
  /** When the group at the head of `pending` first found the write lock taken (0: it has not). */
  private busySince = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  /**
   * `commit` runs one group (never empty), must not throw, and says what it did (CommitOutcome).
   * `busySince` is when this group first found the write lock taken (0: never yet).
   */
  constructor(private readonly commit: (group: T[], busySince: number) => CommitOutcome) {}

  /**
   * When the group at the head of the queue first found the write lock taken (performance.now(); 0
   * when it has not): for health().
   */
  get waitingSince(): number {
    return this.busySince;
  }

  /** Calls queued and not yet committed. */
  get queued(): number {
    return this.pending.length;
  }

  /** Queue `call` for the next group. */
  add(call: T): void {
    this.pending.push(call);
    // While the calls of callers just answered are looked for, that look commits this one too.
    if (this.hopsLeft === 0) this.commitOnNextTurn();
  }

  /**
   * Commit everything queued, group after group, now; while another connection holds the write lock,
   * between turns of the event loop, as any group waits. Resolves once nothing is queued. Calls made
   * meanwhile are the caller's to refuse.
   */
  async drain(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    while (this.pending.length > 0) {
      if (!this.commitHead()) await new Promise((resolve) => setTimeout(resolve, DEFERRED_RETRY_MS));
    }
  }

  /** Have what is queued committed at the next turn of the event loop (once, however often asked). */
  private commitOnNextTurn(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.commitOnTurn);
  }

  /** The event loop's turn: commit what gathered since, and start a new stretch (see LOOK_BUDGET_MS). */
  private readonly commitOnTurn = (): void => {
    // Draining commits everything itself; a lock found taken since this was scheduled: the timer does.
    if (this.stopped || this.retryTimer !== undefined) return;
    this.scheduled = false;
    this.lookingSince = 0;
    this.commitNow();
  };

  /**
   * Commit the head of the queue, then look for the calls its callers make next; or, the write lock
   * taken, try again after DEFERRED_RETRY_MS.
   */
  private commitNow(): void {
    if (!this.commitHead()) {
      this.retryLater();
      return;
    }
    // What did not fit in the group goes in the next, at the next turn of the loop.
    if (this.pending.length > 0) this.commitOnNextTurn();
    this.lookAgain();
  }

  /**
   * Commit up to MAX_GROUP queued calls as one group: true. Or false, the write lock taken, with the
   * calls kept at the head of the queue and when they first found it so.
   */
  private commitHead(): boolean {
    if (this.pending.length === 0) return true;
    const group = this.takeGroup();
    const outcome = this.commit(group, this.busySince);
    if (outcome === 'waiting') {
      this.putBack(group);
      if (this.busySince === 0) this.busySince = performance.now();
      return false;
    }
    if (outcome === 'timed-out') this.failQueued();
    this.busySince = 0;
    return true;
  }

  /**
   * A group timed out: the calls queued behind it (more than one group holds) waited on the same lock,
   * and fail with it at their first try, unless it has just been let go. Otherwise, with a lock held
   * for minutes and callers that do not stop (no circuit breaker), each timeout would fail one group
   * while more than one arrived, and the queue would grow, to be committed late when the lock is free.
   */
  private failQueued(): void {
    const since = this.busySince === 0 ? performance.now() : this.busySince;
    while (this.pending.length > 0) {
      const group = this.takeGroup();
      // A group the lock still keeps out would wait again: it goes back to the queue's head.
      if (this.commit(group, since) === 'waiting') {
        this.putBack(group);
        return;
      }
    }
  }

  /** The next group: up to MAX_GROUP calls from the head of the queue. */
  private takeGroup(): T[] {
    if (this.pending.length > MAX_GROUP) return this.pending.splice(0, MAX_GROUP);
    const group = this.pending;
    this.pending = [];
    return group;
  }

  /** `group`, which did not run, back at the head of the queue. */
  private putBack(group: T[]): void {
    this.pending = this.pending.length === 0 ? group : group.concat(this.pending);
  }

  /** The lock was taken: one timer stands in for every other way a commit gets scheduled. */
  private retryLater(): void {
    this.scheduled = true;
    this.hopsLeft = 0;
    if (this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(this.retry, DEFERRED_RETRY_MS);
  }

  private readonly retry = (): void => {
    this.retryTimer = undefined;
    this.commitOnTurn();
  };

  /** Wait LOOK_HOPS microtasks for the next calls of the callers just settled (see LOOK_HOPS). */
  private lookAgain(): void {
    if (this.scheduled || this.hopsLeft > 0 || this.stopped) return;
    this.hopsLeft = LOOK_HOPS;
    microtask(this.hop);
  }

  private readonly hop = (): void => {
    if (--this.hopsLeft > 0) {
      microtask(this.hop);
      return;
    }
    if (this.pending.length === 0 || this.stopped) return;
    const now = performance.now();
    if (this.lookingSince === 0) this.lookingSince = now;
    if (now - this.lookingSince < LOOK_BUDGET_MS) this.commitNow();
    else this.commitOnNextTurn();
  };
}
