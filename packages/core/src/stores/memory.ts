/**
 * In-process store. Exact under concurrency because every check runs synchronously on the one JS
 * thread. Compact: no object and no string per key. A key's state, expiry, LRU links and text share
 * one 72-byte record in a typed-array page (slots.ts), found through the key table (key-table.ts):
 * a million keys take about 90 MB of RSS. Bounded: at `maxKeys` the least recently used key is
 * evicted (and counted). No timer per key: expired keys are reclaimed from the LRU tail as new keys
 * arrive, and by one unref'd sweep that walks a slice of the slots at a time.
 */
import { ALGORITHMS, type ReusableStepResult, type ReusingAlgorithm } from '../algorithms/index.js';
import { coarseMonotonicClock } from '../clock.js';
import { toDecision } from '../decision.js';
import { assertKnownOptions, FloodgateError, show } from '../errors.js';
import { type EvaluationScratch, evaluate, peekPolicy, toPolicyDecision } from '../evaluate.js';
import type {
  AlgorithmName,
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
import { KeyTable } from './key-table.js';
import {
  EXPIRY,
  NEXT,
  NONE,
  PAGE_BITS,
  PAGE_MASK,
  PAGE_SIZE,
  PREV,
  SLOT_FLOATS,
  SLOT_INTS,
  SlotPages,
} from './slots.js';

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
/** Slots reclaimed from the LRU tail per new key, and per sweep tick. */
const RECLAIM_PER_INSERT = 2;
const SWEEP_SLICE = 50_000;
const INITIAL_CAPACITY = 1024;

/** A bucket (one policy's counts): its id is what a slot records. */
interface Bucket {
  readonly id: number;
  readonly name: string;
}

/**
 * What the several-policy path keeps of a policy list between calls (a limiter passes the same
 * list every call): its bucket ids, the arrays a check fills, one reused step result per policy,
 * and the slots of the key it checked last.
 */
interface PolicyList {
  readonly policies: readonly Policy[];
  readonly buckets: number[];
  readonly slots: number[];
  readonly states: (AlgorithmState | undefined)[];
  /** Per policy, the array a stored state is copied into. */
  readonly reads: number[][];
  readonly scratch: EvaluationScratch;
  /** The key checked last with this list, held in `hotSlots` as long as no slot was released since. */
  hotKey: string | undefined;
  hotReleases: number;
  readonly hotSlots: number[];
}

export class MemoryStore implements Store {
  readonly kind = 'memory';
  /** Keys evicted to stay within maxKeys since the store was created. */
  evictions = 0;

  private readonly maxKeys: number;
  private readonly clock: Clock;
  private readonly buckets = new Map<string, Bucket>();
  /** One record per slot (slots.ts): state, expiry, LRU links, bucket and key text. */
  private readonly slots = new SlotPages();
  private readonly keys = new KeyTable(this.slots);
  private capacity = 0;
  private used = 0;
  private freeHead = NONE;
  /** Sliding-log states, unbounded in length, live here instead of in their slot's record. */
  private readonly logs = new Map<number, number[]>();
  /** Slots released since the store was made: a key's remembered slots are good while it is unchanged. */
  private releases = 0;
  private head = NONE;
  private tail = NONE;
  private sweepCursor = 0;
  /**
   * The one-policy path's cache of the last policy's bucket and algorithm, its scratch state, and
   * the result its algorithm's step overwrites on every call (undefined for the sliding log).
   */
  private lastPolicy: Policy | undefined;
  private lastBucket: Bucket | undefined;
  private lastAlgorithm: ReusingAlgorithm | undefined;
  private lastResult: ReusableStepResult | undefined;
  private readonly scratch = [0, 0, 0];
  /** One reusable step result per algorithm: the states differ in size (see ReusingAlgorithm). */
  private readonly results: Partial<Record<AlgorithmName, ReusableStepResult>> = {};
  /**
   * The key, bucket and slot the one-policy path used last: a burst from one client skips the index.
   * `hotKey` is cleared when that slot is released.
   */
  private hotKey: string | undefined;
  private hotBucket = NONE;
  private hotSlot = NONE;
  /** The several-policy path's lists, the one used last first. */
  private lastList: PolicyList | undefined;
  private readonly lists = new WeakMap<readonly Policy[], PolicyList>();
  private readonly sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    assertKnownOptions(options, ['maxKeys', 'clock', 'sweepIntervalMs'], 'MemoryStore');
    const maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
    // The key index stores slot numbers in 24 bits (key-table.ts): this bound keeps them there.
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
   * page arithmetic is done once here and the record is read in place (small helpers cost a call
   * each once the inlining budget is spent on the algorithm's step).
   */
  private consumeOne(key: string, policy: Policy, cost: number, now: number): PolicyDecision {
    if (policy !== this.lastPolicy) this.bind(policy);
    const bucket = (this.lastBucket as Bucket).id;
    let slot: number;
    if (key === this.hotKey && bucket === this.hotBucket) slot = this.hotSlot;
    else {
      slot = this.keys.find(bucket, key);
      if (slot !== NONE) this.remember(key, bucket, slot);
    }
    let floats = this.slots.floats[0];
    let base = 0;
    // An expired state reads as none, but its slot stays the key's: an admission writes the new
    // state over it, with no index change (a key that comes back after its state expired, as with a
    // token bucket refilled in a few ms, would otherwise be removed and added again every check).
    let live = slot !== NONE;
    if (live) {
      floats = this.slots.floats[slot >>> PAGE_BITS];
      base = (slot & PAGE_MASK) * SLOT_FLOATS;
      live = floats[base + EXPIRY] > now;
    }
    const log = policy.algorithm === 'sliding-log';
    let state: AlgorithmState | undefined;
    if (!live) state = undefined;
    else if (log) state = this.logs.get(slot) ?? [];
    else {
      const scratch = this.scratch;
      scratch[0] = floats[base];
      scratch[1] = floats[base + 1];
      scratch[2] = floats[base + 2];
      state = scratch;
    }
    const step = (this.lastAlgorithm as ReusingAlgorithm).step(state, now, policy, cost, this.lastResult);
    if (!step.allowed) {
      if (live) this.denied(bucket, key, slot, policy, step, now);
      else if (slot !== NONE) this.release(slot); // expired, and nothing new to keep
    } else if (slot === NONE) {
      this.remember(key, bucket, this.write(bucket, key, slot, policy, step.state, now, step.ttlMs));
    } else if (log) {
      this.write(bucket, key, slot, policy, step.state, now, step.ttlMs);
    } else {
      if (this.head !== slot) this.touch(slot);
      floats[base + EXPIRY] = now + step.ttlMs;
      const next = step.state;
      for (let i = 0; i < next.length; i++) floats[base + i] = next[i];
    }
    return toPolicyDecision(policy, step);
  }

  private remember(key: string, bucket: number, slot: number): void {
    this.hotKey = key;
    this.hotBucket = bucket;
    this.hotSlot = slot;
  }

  /**
   * Several policies, all or nothing (evaluate.ts). What a call would otherwise allocate or look up
   * again (bucket ids, arrays, step results, the slots of a key checked twice in a row) is kept per
   * policy list; a call copies out what it keeps (states into records, figures into the decisions).
   */
  private consumeAll(key: string, policies: readonly Policy[], cost: number, now: number): PolicyDecision[] {
    const list = this.listOf(policies);
    const { buckets, slots, states, reads } = list;
    const hot = key === list.hotKey && list.hotReleases === this.releases;
    for (let i = 0; i < policies.length; i++) {
      let slot = hot ? list.hotSlots[i] : this.keys.find(buckets[i], key);
      if (slot !== NONE && this.expiry(slot) <= now) {
        this.release(slot);
        slot = NONE;
      }
      slots[i] = slot;
      states[i] = slot === NONE ? undefined : this.read(slot, policies[i], reads[i]);
    }
    const result = evaluate(policies, states, now, cost, list.scratch);
    if (result.allowed) {
      const steps = result.steps;
      // The key's existing slots first: written, they are the most recently used, so a new slot's
      // insert (which may evict at maxKeys) takes another key's slot, never one still to be written.
      for (let i = 0; i < policies.length; i++) {
        if (slots[i] !== NONE)
          this.write(buckets[i], key, slots[i], policies[i], steps[i].state, now, steps[i].ttlMs);
      }
      for (let i = 0; i < policies.length; i++) {
        if (slots[i] === NONE) {
          slots[i] = this.write(buckets[i], key, NONE, policies[i], steps[i].state, now, steps[i].ttlMs);
        }
      }
    } else {
      for (let i = 0; i < policies.length; i++) {
        if (slots[i] !== NONE) this.denied(buckets[i], key, slots[i], policies[i], result.steps[i], now);
      }
    }
    this.rememberSlots(list, key);
    return result.decisions;
  }

  private listOf(policies: readonly Policy[]): PolicyList {
    const last = this.lastList;
    if (last !== undefined && last.policies === policies) return last;
    let list = this.lists.get(policies);
    if (list === undefined) {
      list = {
        policies,
        buckets: policies.map((policy) => this.bucket(policy.bucket).id),
        slots: policies.map(() => NONE),
        states: policies.map(() => undefined),
        reads: policies.map(() => [0, 0, 0]),
        scratch: { steps: new Array(policies.length), results: policies.map(reusableResult) },
        hotKey: undefined,
        hotReleases: 0,
        hotSlots: policies.map(() => NONE),
      };
      this.lists.set(policies, list);
    }
    this.lastList = list;
    return list;
  }

  /**
   * Remember the slots `list.slots` holds for `key`, if it now has one in every bucket. A new key's
   * insert for one policy may have evicted (at maxKeys) the slot just written for another: a slot
   * that no longer holds the policy's bucket is not remembered.
   */
  private rememberSlots(list: PolicyList, key: string): void {
    list.hotKey = undefined;
    for (let i = 0; i < list.slots.length; i++) {
      const slot = list.slots[i];
      if (slot === NONE || !this.keys.inUse(slot) || this.keys.bucketOf(slot) !== list.buckets[i]) return;
      list.hotSlots[i] = slot;
    }
    list.hotKey = key;
    list.hotReleases = this.releases;
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
    bucket: number,
    key: string,
    slot: number,
    policy: Policy,
    step: StepResult,
    now: number,
  ): void {
    if (step.rewound) this.write(bucket, key, slot, policy, step.state, now, step.ttlMs);
    else this.touch(slot);
  }

  /** Remember the bucket and algorithm of the policy seen last: a limiter passes the same one every call. */
  private bind(policy: Policy): void {
    const name = policy.algorithm;
    const algorithm = ALGORITHMS[name];
    this.lastBucket = this.bucket(policy.bucket);
    this.lastAlgorithm = algorithm;
    // Overwritten by every later call: consumeOne copies out what it keeps (the state into its
    // record, the figures into the decision) before the next call.
    this.lastResult = this.results[name] ??= reusableResult(policy);
    this.lastPolicy = policy;
  }

  peek(key: string, policies: readonly Policy[]): Promise<readonly PolicyDecision[]> {
    this.assertOpen();
    const now = this.clock();
    return Promise.resolve(
      policies.map((policy) => {
        const bucket = this.buckets.get(policy.bucket);
        const slot = bucket ? this.find(bucket.id, key, now) : NONE;
        return peekPolicy(policy, slot === NONE ? undefined : this.read(slot, policy, [0, 0, 0]), now);
      }),
    );
  }

  async reset(key: string, buckets: readonly string[]): Promise<void> {
    this.assertOpen();
    for (const name of buckets) {
      const bucket = this.buckets.get(name);
      const slot = bucket ? this.keys.find(bucket.id, key) : NONE;
      if (slot !== NONE) this.release(slot);
    }
  }

  async clear(prefix: string): Promise<number> {
    this.assertOpen();
    const matching = this.bucketIds(prefix);
    let removed = 0;
    for (let slot = 0; slot < this.capacity && matching.size > 0; slot++) {
      if (this.keys.inUse(slot) && matching.has(this.keys.bucketOf(slot))) {
        this.release(slot);
        removed++;
      }
    }
    return removed;
  }

  async *entries(prefix: string): AsyncIterable<StoreEntry> {
    this.assertOpen();
    const now = this.clock();
    const matching = this.bucketIds(prefix);
    const names = new Map([...this.buckets.values()].map((b) => [b.id, b.name]));
    for (let slot = 0; slot < this.capacity && matching.size > 0; slot++) {
      if (!this.keys.inUse(slot) || !matching.has(this.keys.bucketOf(slot))) continue;
      const floats = this.slots.floats[slot >>> PAGE_BITS];
      const base = (slot & PAGE_MASK) * SLOT_FLOATS;
      const expiresAt = floats[base + EXPIRY];
      if (expiresAt <= now) continue;
      const log = this.logs.get(slot);
      yield {
        bucket: names.get(this.keys.bucketOf(slot)) as string,
        key: this.keys.keyOf(slot) as string,
        state: log ? [...log] : Array.from(floats.subarray(base, base + EXPIRY)),
        expiresAt: Date.now() + (expiresAt - now),
      };
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
      if (this.keys.inUse(slot) && this.expiry(slot) <= now) {
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

  private bucket(name: string): Bucket {
    let bucket = this.buckets.get(name);
    if (bucket === undefined) {
      bucket = { id: this.buckets.size, name };
      this.buckets.set(name, bucket);
    }
    return bucket;
  }

  /** Ids of the buckets whose name starts with `prefix`. */
  private bucketIds(prefix: string): Set<number> {
    const ids = new Set<number>();
    for (const bucket of this.buckets.values()) if (bucket.name.startsWith(prefix)) ids.add(bucket.id);
    return ids;
  }

  /** The live slot of `key`, or NONE (an expired one is released on the way). */
  private find(bucket: number, key: string, now: number): number {
    const slot = this.keys.find(bucket, key);
    if (slot === NONE) return NONE;
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
    const base = (slot & PAGE_MASK) * SLOT_FLOATS;
    const floats = this.slots.floats[slot >>> PAGE_BITS];
    into[0] = floats[base];
    into[1] = floats[base + 1];
    into[2] = floats[base + 2];
    return into;
  }

  /** Store `state` for `key` (in `slot`, or in a new slot when NONE) until now + ttlMs; returns the slot. */
  private write(
    bucket: number,
    key: string,
    slot: number,
    policy: Policy,
    state: readonly number[],
    now: number,
    ttlMs: number,
  ): number {
    if (slot === NONE) slot = this.insert(bucket, key, now);
    else this.touch(slot);
    const floats = this.slots.floats[slot >>> PAGE_BITS];
    const base = (slot & PAGE_MASK) * SLOT_FLOATS;
    floats[base + EXPIRY] = now + ttlMs;
    if (policy.algorithm === 'sliding-log') this.logs.set(slot, state as number[]);
    else for (let i = 0; i < state.length; i++) floats[base + i] = state[i];
    return slot;
  }

  private insert(bucket: number, key: string, now: number): number {
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
    this.keys.add(bucket, key, slot);
    this.linkAtHead(slot);
    return slot;
  }

  private release(slot: number): void {
    if (!this.keys.inUse(slot)) return;
    if (slot === this.hotSlot) this.hotKey = undefined;
    this.releases++;
    this.keys.remove(slot);
    this.logs.delete(slot);
    this.unlink(slot);
    this.setNext(slot, this.freeHead);
    this.freeHead = slot;
    this.used--;
  }

  /** Make `slot` (in use) the most recently used. */
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

  /** When `slot` expires, in the clock's ms. */
  private expiry(slot: number): number {
    return this.slots.floats[slot >>> PAGE_BITS][(slot & PAGE_MASK) * SLOT_FLOATS + EXPIRY];
  }
  private prevOf(slot: number): number {
    return this.slots.ints[slot >>> PAGE_BITS][(slot & PAGE_MASK) * SLOT_INTS + PREV];
  }
  private nextOf(slot: number): number {
    return this.slots.ints[slot >>> PAGE_BITS][(slot & PAGE_MASK) * SLOT_INTS + NEXT];
  }
  private setPrev(slot: number, to: number): void {
    this.slots.ints[slot >>> PAGE_BITS][(slot & PAGE_MASK) * SLOT_INTS + PREV] = to;
  }
  private setNext(slot: number, to: number): void {
    this.slots.ints[slot >>> PAGE_BITS][(slot & PAGE_MASK) * SLOT_INTS + NEXT] = to;
  }

  /**
   * Add slots and thread them onto the free list: the first page doubles (from INITIAL_CAPACITY up
   * to PAGE_SIZE), then one new page at a time, never beyond maxKeys.
   */
  private grow(): void {
    const old = this.capacity;
    const capacity =
      old < PAGE_SIZE
        ? Math.min(this.maxKeys, PAGE_SIZE, Math.max(INITIAL_CAPACITY, old * 2))
        : old + Math.min(this.maxKeys - old, PAGE_SIZE);
    this.slots.grow(capacity);
    for (let slot = capacity - 1; slot >= old; slot--) {
      this.setNext(slot, this.freeHead);
      this.freeHead = slot;
    }
    this.capacity = capacity;
  }
}

/**
 * A result of the policy's algorithm's own making (a step on no state), for its later steps to
 * overwrite; none for the sliding log, whose state is kept by reference.
 */
function reusableResult(policy: Policy): ReusableStepResult | undefined {
  if (policy.algorithm === 'sliding-log') return undefined;
  return ALGORITHMS[policy.algorithm].step(undefined, 0, policy, 0) as ReusableStepResult;
}
