/**
 * In-process store. Exact under concurrency because every check runs synchronously on the one JS
 * thread. Compact: a key costs one Map entry plus fixed-size slots in typed arrays (no object per
 * key), so a million keys take about 145 MB of RSS, key strings included. Bounded: at `maxKeys`
 * the least recently used key is evicted (and counted). No timer per key: expired keys are
 * reclaimed from the LRU tail as new keys arrive, and by one unref'd sweep that walks a slice of
 * the slots at a time.
 */
import { ALGORITHMS } from '../algorithms/index.js';
import { coarseMonotonicClock } from '../clock.js';
import { toDecision } from '../decision.js';
import { assertKnownOptions, FloodgateError, show } from '../errors.js';
import { evaluate, peekPolicy, toPolicyDecision } from '../evaluate.js';
import type {
  Algorithm,
  AlgorithmState,
  Clock,
  Decision,
  Policy,
  PolicyDecision,
  StepResult,
  Store,
  StoreEntry,
  StoreHealth,
} from '../types.js';

export interface MemoryStoreOptions {
  /** Most keys held at once (all buckets together); the least recently used is evicted. @default 10_000_000 */
  maxKeys?: number;
  /**
   * Time source in ms since the epoch. @default a monotonic clock anchored at process start, read at
   * a granularity of about 1 ms (see coarseMonotonicClock in clock.ts)
   */
  clock?: Clock;
  /** How often the background sweep runs, in ms (0 turns it off). @default 10_000 */
  sweepIntervalMs?: number;
}

const DEFAULT_MAX_KEYS = 10_000_000;
/** Widest fixed-size state of any algorithm (sliding window: 3 numbers). */
const STRIDE = 3;
const NONE = -1;
/** Slots reclaimed from the LRU tail per new key, and per sweep tick. */
const RECLAIM_PER_INSERT = 2;
const SWEEP_SLICE = 50_000;
const INITIAL_CAPACITY = 1024;
/**
 * Slots per page. The columns grow a page at a time and are never copied (only the first page
 * doubles up to this size, so a small store stays small): doubling whole columns left the old
 * copies behind as freed-but-kept malloc memory, about 20 bytes of RSS per key at a million keys.
 */
const PAGE_BITS = 16;
const PAGE_SIZE = 1 << PAGE_BITS;
const PAGE_MASK = PAGE_SIZE - 1;

/** Per-bucket index from key to slot. */
class Table {
  readonly index = new Map<string, number>();
  constructor(
    readonly id: number,
    readonly bucket: string,
  ) {}
}

export class MemoryStore implements Store {
  readonly kind = 'memory';
  /** Keys evicted to stay within maxKeys since the store was created. */
  evictions = 0;

  private readonly maxKeys: number;
  private readonly clock: Clock;
  private readonly tables = new Map<string, Table>();
  private readonly tableById: Table[] = [];
  private capacity = 0;
  private used = 0;
  private freeHead = NONE;
  // Slot columns. States live in `numbers`; sliding-log states (unbounded in length) in `logs`.
  // Each column is a list of pages of PAGE_SIZE slots: slot s is at [s >>> PAGE_BITS][s & PAGE_MASK].
  private readonly numberPages: Float64Array[] = [];
  private readonly expiryPages: Float64Array[] = [];
  private readonly prevPages: Int32Array[] = [];
  private readonly nextPages: Int32Array[] = [];
  private readonly tablePages: Int32Array[] = [];
  private readonly keyPages: (string | undefined)[][] = [];
  private readonly logs = new Map<number, number[]>();
  private head = NONE;
  private tail = NONE;
  private sweepCursor = 0;
  /** The one-policy path's cache of the last policy's table and algorithm, and its scratch state. */
  private lastPolicy: Policy | undefined;
  private lastTable: Table | undefined;
  private lastAlgorithm: Algorithm | undefined;
  private readonly scratch = [0, 0, 0];
  /** The slot the one-policy path found last (possibly released or reused since: check its key). Never negative. */
  private hotSlot = 0;
  private readonly sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    assertKnownOptions(options, ['maxKeys', 'clock', 'sweepIntervalMs'], 'MemoryStore');
    const maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
    if (!Number.isInteger(maxKeys) || maxKeys < 1 || maxKeys > 16_000_000) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `maxKeys ${show(maxKeys)} must be a whole number from 1 to 16000000 (a JS Map's ceiling), like 100000`,
      );
    }
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `clock must be a function returning ms, like () => Date.now()`,
      );
    }
    const sweepIntervalMs = options.sweepIntervalMs ?? 10_000;
    if (!Number.isInteger(sweepIntervalMs) || sweepIntervalMs < 0) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `sweepIntervalMs ${show(sweepIntervalMs)} must be a whole number of ms >= 0, like 10000`,
      );
    }
    this.maxKeys = maxKeys;
    this.clock = options.clock ?? coarseMonotonicClock;
    // The first slots now, so the hot path may read slot `hotSlot` (0) before any key was stored.
    this.grow();
    if (sweepIntervalMs > 0) {
      this.sweepTimer = setInterval(() => this.sweep(SWEEP_SLICE), sweepIntervalMs);
      this.sweepTimer.unref();
    }
  }

  /** Number of keys held (all buckets). */
  get size(): number {
    return this.used;
  }

  consume(key: string, policies: readonly Policy[], cost: number): Promise<readonly PolicyDecision[]> {
    return Promise.resolve(this.consumeSync(key, policies, cost));
  }

  /** The synchronous check behind `consume`, for callers on the hot path. */
  consumeSync(key: string, policies: readonly Policy[], cost: number): PolicyDecision[] {
    this.assertOpen();
    const now = this.clock();
    if (policies.length === 1) return [this.consumeOne(key, policies[0], cost, now)];
    return this.consumeAll(key, policies, cost, now);
  }

  /**
   * `consumeSync` straight to the Decision a Limiter returns (degraded false): the Limiter's memory
   * fast path, with one policy skipping the all-or-nothing bookkeeping.
   */
  consumeDecision(key: string, policies: readonly Policy[], cost: number, exceedsLimit: boolean): Decision {
    this.assertOpen();
    const now = this.clock();
    const decisions =
      policies.length === 1
        ? [this.consumeOne(key, policies[0], cost, now)]
        : this.consumeAll(key, policies, cost, now);
    return toDecision(decisions, false, exceedsLimit);
  }

  /**
   * One policy: no all-or-nothing bookkeeping needed. The hot path of every memory limiter, so the
   * page arithmetic is done once here and the columns are read in place (small helpers cost a
   * call each once the inlining budget is spent on the algorithm's step).
   */
  private consumeOne(key: string, policy: Policy, cost: number, now: number): PolicyDecision {
    if (policy !== this.lastPolicy) this.bind(policy);
    const table = this.lastTable as Table;
    // The slot used last is checked first: a burst from one client skips the index lookup.
    let slot = this.hotSlot;
    let page = slot >>> PAGE_BITS;
    let at = slot & PAGE_MASK;
    if (this.keyPages[page][at] !== key || this.tablePages[page][at] !== table.id) {
      slot = table.index.get(key) ?? NONE;
      if (slot !== NONE) {
        this.hotSlot = slot;
        page = slot >>> PAGE_BITS;
        at = slot & PAGE_MASK;
      }
    }
    const expiry = this.expiryPages[page];
    if (slot !== NONE && expiry[at] <= now) {
      this.release(slot);
      slot = NONE;
    }
    const log = policy.algorithm === 'sliding-log';
    const numbers = this.numberPages[page];
    const base = at * STRIDE;
    let state: AlgorithmState | undefined;
    if (slot === NONE) state = undefined;
    else if (log) state = this.logs.get(slot) ?? [];
    else {
      const scratch = this.scratch;
      scratch[0] = numbers[base];
      scratch[1] = numbers[base + 1];
      scratch[2] = numbers[base + 2];
      state = scratch;
    }
    const step = (this.lastAlgorithm as Algorithm).step(state, now, policy, cost);
    if (!step.allowed) {
      if (slot !== NONE) this.denied(table, key, slot, policy, step, now);
    } else if (slot === NONE || log) {
      this.write(table, key, slot, policy, step.state, now, step.ttlMs);
    } else {
      if (this.head !== slot) this.touch(slot);
      expiry[at] = now + step.ttlMs;
      const next = step.state;
      for (let i = 0; i < next.length; i++) numbers[base + i] = next[i];
    }
    return toPolicyDecision(policy, step);
  }

  private consumeAll(key: string, policies: readonly Policy[], cost: number, now: number): PolicyDecision[] {
    const slots: number[] = new Array(policies.length);
    const states: (AlgorithmState | undefined)[] = new Array(policies.length);
    for (let i = 0; i < policies.length; i++) {
      slots[i] = this.find(this.table(policies[i].bucket), key, now);
      states[i] = slots[i] === NONE ? undefined : this.read(slots[i], policies[i], [0, 0, 0]);
    }
    const result = evaluate(policies, states, now, cost);
    for (let i = 0; i < policies.length; i++) {
      const step = result.steps[i];
      if (result.allowed) {
        this.write(this.table(policies[i].bucket), key, slots[i], policies[i], step.state, now, step.ttlMs);
      } else if (slots[i] !== NONE) {
        this.denied(this.table(policies[i].bucket), key, slots[i], policies[i], step, now);
      }
    }
    return result.decisions;
  }

  /**
   * A denial writes nothing, but it is a use: a key denied again and again stays the most recently
   * used, so pressure from other keys cannot evict it and hand it a fresh limit.
   *
   * After the clock went back (`step.rewound`), a denial also stores the algorithm's own view of the
   * state as of now (future times pulled back to now, nothing consumed). Without this, every call
   * would see the same future state and the key would stay blocked until the clock caught up with
   * its old time: for as long as the jump, not for about one window.
   */
  private denied(
    table: Table,
    key: string,
    slot: number,
    policy: Policy,
    step: StepResult,
    now: number,
  ): void {
    if (step.rewound) this.write(table, key, slot, policy, step.state, now, step.ttlMs);
    else this.touch(slot);
  }

  /** Remember the table and algorithm of the policy seen last: a limiter passes the same one every call. */
  private bind(policy: Policy): void {
    this.lastTable = this.table(policy.bucket);
    this.lastAlgorithm = ALGORITHMS[policy.algorithm];
    this.lastPolicy = policy;
  }

  peek(key: string, policies: readonly Policy[]): Promise<readonly PolicyDecision[]> {
    this.assertOpen();
    const now = this.clock();
    return Promise.resolve(
      policies.map((policy) => {
        const table = this.tables.get(policy.bucket);
        const slot = table ? this.find(table, key, now) : NONE;
        return peekPolicy(policy, slot === NONE ? undefined : this.read(slot, policy, [0, 0, 0]), now);
      }),
    );
  }

  async reset(key: string, buckets: readonly string[]): Promise<void> {
    this.assertOpen();
    for (const bucket of buckets) {
      const table = this.tables.get(bucket);
      const slot = table?.index.get(key);
      if (slot !== undefined) this.release(slot);
    }
  }

  async clear(prefix: string): Promise<number> {
    this.assertOpen();
    let removed = 0;
    for (const table of this.tables.values()) {
      if (!table.bucket.startsWith(prefix)) continue;
      for (const slot of table.index.values()) {
        this.release(slot);
        removed++;
      }
    }
    return removed;
  }

  async *entries(prefix: string): AsyncIterable<StoreEntry> {
    this.assertOpen();
    const now = this.clock();
    for (const table of [...this.tables.values()]) {
      if (!table.bucket.startsWith(prefix)) continue;
      for (const [key, slot] of [...table.index]) {
        if (this.expiry(slot) <= now) continue;
        const log = this.logs.get(slot);
        const base = (slot & PAGE_MASK) * STRIDE;
        const numbers = this.numberPages[slot >>> PAGE_BITS];
        yield {
          bucket: table.bucket,
          key,
          state: log ? [...log] : Array.from(numbers.subarray(base, base + STRIDE)),
          expiresAt: Date.now() + (this.expiry(slot) - now),
        };
      }
    }
  }

  async health(): Promise<StoreHealth> {
    return { ok: !this.closed, latencyMs: 0, detail: `memory: ${this.used} keys, ${this.evictions} evicted` };
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.closed = true;
  }

  /**
   * Reclaim expired slots, walking at most `limit` slots from where the last sweep stopped.
   * Runs by itself on a timer; exposed for tests and for callers that want to force it.
   */
  sweep(limit = this.capacity): number {
    const now = this.clock();
    let reclaimed = 0;
    for (let n = 0; n < limit && this.capacity > 0; n++) {
      const slot = this.sweepCursor;
      this.sweepCursor = (this.sweepCursor + 1) % this.capacity;
      if (this.keyOf(slot) !== undefined && this.expiry(slot) <= now) {
        this.release(slot);
        reclaimed++;
      }
    }
    return reclaimed;
  }

  private assertOpen(): void {
    if (this.closed)
      throw new FloodgateError('FLOODGATE_CLOSED', 'this MemoryStore was closed; create a new one');
  }

  private table(bucket: string): Table {
    let table = this.tables.get(bucket);
    if (table === undefined) {
      table = new Table(this.tableById.length, bucket);
      this.tables.set(bucket, table);
      this.tableById.push(table);
    }
    return table;
  }

  /** The live slot of `key`, or NONE (an expired one is released on the way). */
  private find(table: Table, key: string, now: number): number {
    const slot = table.index.get(key);
    if (slot === undefined) return NONE;
    if (this.expiry(slot) <= now) {
      this.release(slot);
      return NONE;
    }
    return slot;
  }

  /**
   * The stored state of `slot`, copied into `into` (the algorithms never keep their input, so the
   * one-policy path reuses a single scratch array instead of allocating one per call).
   */
  private read(slot: number, policy: Policy, into: number[]): AlgorithmState {
    if (policy.algorithm === 'sliding-log') return this.logs.get(slot) ?? [];
    const base = (slot & PAGE_MASK) * STRIDE;
    const n = this.numberPages[slot >>> PAGE_BITS];
    into[0] = n[base];
    into[1] = n[base + 1];
    into[2] = n[base + 2];
    return into;
  }

  private write(
    table: Table,
    key: string,
    slot: number,
    policy: Policy,
    state: readonly number[],
    now: number,
    ttlMs: number,
  ): void {
    if (slot === NONE) slot = this.insert(table, key, now);
    else this.touch(slot);
    this.setState(slot, policy, state, now + ttlMs);
  }

  /** Store `state` in `slot` until `expiresAt` (kept apart from `write` so the hot path can inline it). */
  private setState(slot: number, policy: Policy, state: readonly number[], expiresAt: number): void {
    const page = slot >>> PAGE_BITS;
    const at = slot & PAGE_MASK;
    this.expiryPages[page][at] = expiresAt;
    if (policy.algorithm === 'sliding-log') {
      this.logs.set(slot, state as number[]);
      return;
    }
    const numbers = this.numberPages[page];
    const base = at * STRIDE;
    for (let i = 0; i < state.length; i++) numbers[base + i] = state[i];
  }

  private insert(table: Table, key: string, now: number): number {
    for (let i = 0; i < RECLAIM_PER_INSERT && this.tail !== NONE && this.expiry(this.tail) <= now; i++) {
      this.release(this.tail);
    }
    if (this.used >= this.maxKeys && this.tail !== NONE) {
      this.release(this.tail);
      this.evictions++;
    }
    if (this.freeHead === NONE) this.grow();
    const slot = this.freeHead;
    this.freeHead = this.nextOf(slot);
    this.used++;
    this.setKey(slot, key);
    this.tablePages[slot >>> PAGE_BITS][slot & PAGE_MASK] = table.id;
    table.index.set(key, slot);
    this.linkAtHead(slot);
    return slot;
  }

  private release(slot: number): void {
    const key = this.keyOf(slot);
    if (key === undefined) return;
    this.tableById[this.tableIdOf(slot)].index.delete(key);
    this.setKey(slot, undefined);
    this.logs.delete(slot);
    this.unlink(slot);
    this.setNext(slot, this.freeHead);
    this.freeHead = slot;
    this.used--;
  }

  private touch(slot: number): void {
    if (this.head === slot) return;
    this.unlink(slot);
    this.linkAtHead(slot);
  }

  private linkAtHead(slot: number): void {
    this.setPrev(slot, NONE);
    this.setNext(slot, this.head);
    if (this.head !== NONE) this.setPrev(this.head, slot);
    this.head = slot;
    if (this.tail === NONE) this.tail = slot;
  }

  private unlink(slot: number): void {
    const before = this.prevOf(slot);
    const after = this.nextOf(slot);
    if (before !== NONE) this.setNext(before, after);
    else this.head = after;
    if (after !== NONE) this.setPrev(after, before);
    else this.tail = before;
  }

  private keyOf(slot: number): string | undefined {
    return this.keyPages[slot >>> PAGE_BITS][slot & PAGE_MASK];
  }
  private setKey(slot: number, key: string | undefined): void {
    this.keyPages[slot >>> PAGE_BITS][slot & PAGE_MASK] = key;
  }
  /** When `slot` expires, in the clock's ms. */
  private expiry(slot: number): number {
    return this.expiryPages[slot >>> PAGE_BITS][slot & PAGE_MASK];
  }
  private tableIdOf(slot: number): number {
    return this.tablePages[slot >>> PAGE_BITS][slot & PAGE_MASK];
  }
  private prevOf(slot: number): number {
    return this.prevPages[slot >>> PAGE_BITS][slot & PAGE_MASK];
  }
  private nextOf(slot: number): number {
    return this.nextPages[slot >>> PAGE_BITS][slot & PAGE_MASK];
  }
  private setPrev(slot: number, to: number): void {
    this.prevPages[slot >>> PAGE_BITS][slot & PAGE_MASK] = to;
  }
  private setNext(slot: number, to: number): void {
    this.nextPages[slot >>> PAGE_BITS][slot & PAGE_MASK] = to;
  }

  /**
   * Add slots to the columns and thread them onto the free list: the first page doubles (from
   * INITIAL_CAPACITY up to PAGE_SIZE), then one new page at a time, never beyond maxKeys.
   */
  private grow(): void {
    const old = this.capacity;
    let capacity: number;
    if (old < PAGE_SIZE) {
      capacity = Math.min(this.maxKeys, PAGE_SIZE, Math.max(INITIAL_CAPACITY, old * 2));
      this.numberPages[0] = extend(this.numberPages[0], new Float64Array(capacity * STRIDE));
      this.expiryPages[0] = extend(this.expiryPages[0], new Float64Array(capacity));
      this.prevPages[0] = extend(this.prevPages[0], new Int32Array(capacity));
      this.nextPages[0] = extend(this.nextPages[0], new Int32Array(capacity));
      this.tablePages[0] = extend(this.tablePages[0], new Int32Array(capacity));
      if (this.keyPages.length === 0) this.keyPages.push([]);
      this.keyPages[0].length = capacity;
    } else {
      const size = Math.min(this.maxKeys - old, PAGE_SIZE);
      capacity = old + size;
      this.numberPages.push(new Float64Array(size * STRIDE));
      this.expiryPages.push(new Float64Array(size));
      this.prevPages.push(new Int32Array(size));
      this.nextPages.push(new Int32Array(size));
      this.tablePages.push(new Int32Array(size));
      this.keyPages.push(new Array<string | undefined>(size).fill(undefined));
    }
    for (let slot = capacity - 1; slot >= old; slot--) {
      this.setNext(slot, this.freeHead);
      this.freeHead = slot;
    }
    this.capacity = capacity;
  }
}

function extend<T extends Float64Array | Int32Array>(from: T | undefined, to: T): T {
  if (from !== undefined) to.set(from);
  return to;
}
