/**
 * MultiStore: an ordered list of stores behind the one Store contract.
 *
 * - `first-healthy` (default): every call goes to the active member, the first healthy one in order.
 *   Each key is counted by one backend at a time.
 * - `round-robin`: calls rotate over the healthy members. Each member counts separately, so use it
 *   only for members that share their data (several addresses of one backend), or divide the limit.
 *
 * Health is tracked from real calls and from background checks (`health()` of each member every
 * `healthCheckIntervalMs`, unref'd). Hysteresis keeps a flapping member from moving traffic on every
 * blip: a member is marked down after `unhealthyAfter` consecutive failures, and it is trusted again
 * only after `hysteresisMs` of uninterrupted successful checks. Failing over away from a down member
 * is immediate; failing back to it waits out the hysteresis, so a member that flaps faster than
 * `hysteresisMs` causes one switch, not one per flap.
 *
 * A call that fails is not retried on another member: a timed-out call may have counted, and
 * retrying would count the request twice. The Limiter's failure policy answers it instead.
 */
import { monotonicClock } from '../clock.js';
import { assertKnownOptions, FloodgateError, show } from '../errors.js';
import { wholeNumberOption } from '../resilience/check.js';
import { withDeadline } from '../resilience/deadline.js';
import type { Clock, Policy, PolicyDecision, Store, StoreEntry, StoreHealth } from '../types.js';

export type MultiStrategy = 'first-healthy' | 'round-robin';

export interface MultiStoreOptions {
  /** @default 'first-healthy' */
  strategy?: MultiStrategy;
  /** How often every member's `health()` is checked in the background, in ms (50 to 600000). @default 1000 */
  healthCheckIntervalMs?: number;
  /** How long a member that was down must pass every check before it takes traffic again, in ms. @default 5000 */
  hysteresisMs?: number;
  /** Consecutive failed calls or checks that mark a member down (1 to 1000). @default 2 */
  unhealthyAfter?: number;
  /** Deadline of a member call or health check, in ms (1 to 60000); a late answer counts as a failure. @default 250 */
  timeoutMs?: number;
  /** Time source (ms). @default a monotonic clock */
  clock?: Clock;
}

export const MULTI_STORE_OPTION_NAMES = [
  'strategy',
  'healthCheckIntervalMs',
  'hysteresisMs',
  'unhealthyAfter',
  'timeoutMs',
  'clock',
] as const;

export interface MultiMemberStatus {
  readonly kind: string;
  readonly up: boolean;
  /** Consecutive failures (calls and checks). */
  readonly failures: number;
  readonly lastError?: string;
}

export interface MultiStoreStatus {
  readonly strategy: MultiStrategy;
  /** Index of the member that takes calls (first-healthy), or -1 for round-robin. */
  readonly active: number;
  readonly members: readonly MultiMemberStatus[];
  /** How many times the active member changed since the store was created. */
  readonly switches: number;
}

/** One entry per change of the active member: when (clock ms) and from which index to which. */
export interface MultiSwitch {
  readonly at: number;
  readonly from: number;
  readonly to: number;
}

interface Member {
  readonly store: Store;
  up: boolean;
  failures: number;
  /** Since when every check has passed (while down); undefined after any failure. */
  healthySince: number | undefined;
  checking: boolean;
  lastError: string | undefined;
}

export class MultiStore implements Store {
  readonly kind = 'multi';
  readonly defaults?: { readonly prefix?: string };
  readonly strategy: MultiStrategy;
  /** Every change of the active member, oldest first (the last 100). */
  readonly switchLog: MultiSwitch[] = [];
  private readonly members: Member[];
  private readonly hysteresisMs: number;
  private readonly unhealthyAfter: number;
  private readonly timeoutMs: number;
  private readonly clock: Clock;
  private readonly timer: NodeJS.Timeout;
  private active = 0;
  private cursor = 0;
  private switches = 0;
  private closed = false;

  /**
   * @param stores the members, in order of preference
   * @param owned close the members when this store closes (true when made from URIs)
   */
  constructor(
    stores: readonly Store[],
    options: MultiStoreOptions = {},
    private readonly owned = false,
  ) {
    if (!Array.isArray(stores) || stores.length < 1 || stores.length > 16) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `MultiStore needs a list of 1 to 16 stores, like createStore(["redis://a:6379", "redis://b:6379"])`,
      );
    }
    if (new Set(stores).size !== stores.length) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        'MultiStore got the same store twice; list each once',
      );
    }
    const settings = MultiStore.checkOptions(options);
    this.strategy = settings.strategy;
    this.hysteresisMs = settings.hysteresisMs;
    this.unhealthyAfter = settings.unhealthyAfter;
    this.timeoutMs = settings.timeoutMs;
    this.clock = options.clock ?? monotonicClock;
    this.members = stores.map((store) => ({
      store,
      up: true,
      failures: 0,
      healthySince: undefined,
      checking: false,
      lastError: undefined,
    }));
    const prefix = stores[0].defaults?.prefix;
    if (prefix !== undefined) this.defaults = Object.freeze({ prefix });
    this.timer = setInterval(() => void this.checkAll(), settings.healthCheckIntervalMs);
    this.timer.unref();
  }

  /** Validate MultiStore options (createStore calls this before it opens any member). */
  static checkOptions(options: MultiStoreOptions): Required<Omit<MultiStoreOptions, 'clock'>> {
    if (options === null || typeof options !== 'object') {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `MultiStore options ${show(options)} must be an object, like { strategy: "first-healthy" }`,
      );
    }
    assertKnownOptions(options, MULTI_STORE_OPTION_NAMES, 'MultiStore');
    const strategy = options.strategy ?? 'first-healthy';
    if (strategy !== 'first-healthy' && strategy !== 'round-robin') {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `strategy ${show(strategy)} must be "first-healthy" or "round-robin"`,
      );
    }
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new FloodgateError('FLOODGATE_INVALID_OPTION', 'clock must be a function returning milliseconds');
    }
    return {
      strategy,
      healthCheckIntervalMs: wholeNumberOption(
        options.healthCheckIntervalMs,
        1000,
        'healthCheckIntervalMs',
        50,
        600_000,
      ),
      hysteresisMs: wholeNumberOption(options.hysteresisMs, 5000, 'hysteresisMs', 0, 3_600_000),
      unhealthyAfter: wholeNumberOption(options.unhealthyAfter, 2, 'unhealthyAfter', 1, 1000),
      timeoutMs: wholeNumberOption(options.timeoutMs, 250, 'timeoutMs', 1, 60_000),
    };
  }

  consume(key: string, policies: readonly Policy[], cost: number): Promise<readonly PolicyDecision[]> {
    return this.route((store) => store.consume(key, policies, cost));
  }

  peek(key: string, policies: readonly Policy[]): Promise<readonly PolicyDecision[]> {
    return this.route((store) => store.peek(key, policies));
  }

  /** Forget `key` on every member, so a member that takes traffic later holds no stale count. */
  async reset(key: string, buckets: readonly string[]): Promise<void> {
    const chosen = this.choose();
    const results = await Promise.allSettled(
      this.members.map((m) => this.guarded(m, (store) => store.reset(key, buckets))),
    );
    const failure = results[chosen];
    if (failure.status === 'rejected') throw failure.reason;
  }

  async clear(prefix: string): Promise<number> {
    const results = await Promise.allSettled(
      this.members.map((m) => this.guarded(m, (store) => store.clear(prefix))),
    );
    let removed = 0;
    for (const result of results) if (result.status === 'fulfilled') removed += result.value;
    const failure = results[this.choose()];
    if (failure.status === 'rejected') throw failure.reason;
    return removed;
  }

  /** Entries of the member that takes calls now. */
  entries(prefix: string): AsyncIterable<StoreEntry> {
    return this.members[this.choose()].store.entries(prefix);
  }

  /** Healthy when the member that takes calls answers its own check. */
  async health(): Promise<StoreHealth> {
    const started = this.clock();
    const index = this.choose();
    const member = this.members[index];
    try {
      const inner = await withDeadline(
        Promise.resolve().then(() => member.store.health()),
        this.timeoutMs,
        `member ${index}`,
      );
      const summary = this.members.map((m, i) => `${i}:${m.store.kind}:${m.up ? 'up' : 'down'}`).join(' ');
      return {
        ok: inner.ok,
        latencyMs: Math.round(this.clock() - started),
        detail: `multi ${this.strategy}, active ${index} (${summary})${inner.detail ? `; ${inner.detail}` : ''}`,
      };
    } catch (error) {
      return { ok: false, latencyMs: Math.round(this.clock() - started), detail: describe(error) };
    }
  }

  status(): MultiStoreStatus {
    return {
      strategy: this.strategy,
      active: this.strategy === 'first-healthy' ? this.active : -1,
      members: this.members.map((m) => ({
        kind: m.store.kind,
        up: m.up,
        failures: m.failures,
        ...(m.lastError === undefined ? {} : { lastError: m.lastError }),
      })),
      switches: this.switches,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    if (this.owned) await Promise.allSettled(this.members.map((m) => m.store.close()));
  }

  /** Check every member once now (the background timer does this every interval). */
  async checkAll(): Promise<void> {
    await Promise.all(this.members.map((member) => this.check(member)));
  }

  private async check(member: Member): Promise<void> {
    // A member frozen mid-check still holds the last check; do not pile more on it.
    if (member.checking || this.closed) return;
    member.checking = true;
    try {
      const health = await withDeadline(
        Promise.resolve().then(() => member.store.health()),
        this.timeoutMs,
        `the ${member.store.kind} store's health check`,
      );
      if (health.ok) this.succeeded(member);
      else this.failed(member, health.detail ?? 'health check not ok');
    } catch (error) {
      this.failed(member, error);
    } finally {
      member.checking = false;
    }
  }

  private route<T>(operation: (store: Store) => Promise<T>): Promise<T> {
    if (this.closed) {
      return Promise.reject(
        new FloodgateError('FLOODGATE_CLOSED', 'this MultiStore was closed; create a new one'),
      );
    }
    return this.guarded(this.members[this.choose()], operation);
  }

  /** The index of the member that takes the next call. */
  private choose(): number {
    if (this.strategy === 'first-healthy') return this.active;
    const n = this.members.length;
    for (let i = 0; i < n; i++) {
      const index = (this.cursor + i) % n;
      if (this.members[index].up) {
        this.cursor = index + 1;
        return index;
      }
    }
    // Nothing is up: keep rotating, so whichever recovers first is found.
    return this.cursor++ % n;
  }

  /** Run one member call under the deadline and record how it went. */
  private guarded<T>(member: Member, operation: (store: Store) => Promise<T>): Promise<T> {
    let pending: Promise<T>;
    try {
      pending = operation(member.store);
    } catch (error) {
      this.failed(member, error);
      return Promise.reject(error);
    }
    return withDeadline(pending, this.timeoutMs, `the ${member.store.kind} store`).then(
      (value) => {
        this.succeeded(member);
        return value;
      },
      (error: unknown) => {
        this.failed(member, error);
        throw error;
      },
    );
  }

  private succeeded(member: Member): void {
    member.failures = 0;
    if (member.up) return;
    const now = this.clock();
    member.healthySince ??= now;
    const allDown = this.members.every((m) => !m.up);
    // In a total outage the first member to answer is trusted at once: there is nothing better.
    if (allDown || now - member.healthySince >= this.hysteresisMs) {
      member.up = true;
      member.healthySince = undefined;
      member.lastError = undefined;
      this.elect();
    }
  }

  private failed(member: Member, error: unknown): void {
    member.failures++;
    member.healthySince = undefined;
    member.lastError = describe(error);
    if (member.up && member.failures >= this.unhealthyAfter) {
      member.up = false;
      this.elect();
    }
  }

  /** first-healthy: make the first member that is up the active one (unchanged if none is up). */
  private elect(): void {
    if (this.strategy !== 'first-healthy') return;
    const next = this.members.findIndex((m) => m.up);
    if (next === -1 || next === this.active) return;
    this.switchLog.push({ at: this.clock(), from: this.active, to: next });
    if (this.switchLog.length > 100) this.switchLog.shift();
    this.switches++;
    this.active = next;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : show(error);
}
