/**
 * The deadlines of a Limiter's calls to its primary store, kept with one timer instead of one per
 * call. Every call gets the same timeout, so deadlines come due in the order the calls were made:
 * a FIFO whose head is the oldest call still waiting. Settled calls are dropped from the head as
 * they go (most answers come back in order), so each call costs a push and a flag, not a timer
 * armed and cleared; the one timer is re-armed for the head when it fires, a few times a second.
 * When the breaker opens, every call still waiting is released at once from the same list.
 */
import { monotonicClock } from '../clock.js';

export interface Deadlined {
  /** When the call is due, by monotonicClock (ms). */
  readonly deadline: number;
  /** Answered, timed out or released: what comes later for it is dropped. */
  settled: boolean;
}

/** Settled entries at the head past which the list is compacted (when they are half of it too). */
const COMPACT_AFTER = 1024;

export class DeadlineQueue<T extends Deadlined> {
  private items: (T | undefined)[] = [];
  private head = 0;
  /** Entries not yet settled. */
  private open = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Whether the timer keeps the process alive: only while some call is waiting, like a per-call timer would. */
  private refed = false;
  /** Set while the list is walked (expiry, release), when a callback may add or settle entries. */
  private walking = 0;
  private readonly onTimer = (): void => this.expireDue();

  /** `expire` is told of each entry whose deadline passed; it is settled by then. */
  constructor(
    private readonly expire: (item: T) => void,
    private readonly clock: () => number = monotonicClock,
  ) {}

  /** Start watching `item` (its deadline is never before the one of any entry added earlier). */
  add(item: T): void {
    this.items.push(item);
    this.open++;
    if (this.timer === undefined) {
      this.arm(item.deadline - this.clock());
    } else if (!this.refed) {
      this.timer.ref();
      this.refed = true;
    }
  }

  /** Mark `item` settled; false if it already was (answered late, timed out or released). */
  settle(item: T): boolean {
    if (item.settled) return false;
    item.settled = true;
    this.open--;
    if (this.open === 0 && this.refed) {
      this.timer?.unref();
      this.refed = false;
    }
    if (this.walking === 0 && this.items[this.head] === item) this.dropSettledHead();
    return true;
  }

  /** Settle every entry still waiting and hand each to `release`, oldest first. */
  releaseAll(release: (item: T) => void): void {
    if (this.open === 0) return;
    this.walking++;
    try {
      const end = this.items.length; // entries added by a callback meanwhile are not released
      for (let i = this.head; i < end; i++) {
        const item = this.items[i];
        if (item !== undefined && this.settle(item)) release(item);
      }
    } finally {
      this.walking--;
    }
    if (this.walking === 0) this.dropSettledHead();
  }

  /** Entries not yet settled (for tests). */
  get waiting(): number {
    return this.open;
  }

  private arm(delayMs: number): void {
    this.timer = setTimeout(this.onTimer, Math.max(1, Math.ceil(delayMs)));
    this.refed = this.open > 0;
    if (!this.refed) this.timer.unref();
  }

  private expireDue(): void {
    this.timer = undefined;
    this.refed = false;
    const now = this.clock();
    this.walking++;
    try {
      for (let i = this.head; i < this.items.length; i++) {
        const item = this.items[i];
        if (item === undefined || item.settled) continue;
        if (item.deadline > now) break;
        this.settle(item);
        this.expire(item);
      }
    } finally {
      this.walking--;
    }
    this.dropSettledHead();
    const first = this.items[this.head];
    if (first !== undefined && this.timer === undefined) this.arm(first.deadline - this.clock());
  }

  /** Forget settled entries at the head, so the list holds about the calls in flight. */
  private dropSettledHead(): void {
    const items = this.items;
    let head = this.head;
    while (head < items.length && (items[head] === undefined || items[head]!.settled)) {
      items[head] = undefined;
      head++;
    }
    if (head === items.length) {
      items.length = 0;
      head = 0;
    } else if (head >= COMPACT_AFTER && head * 2 >= items.length) {
      items.copyWithin(0, head);
      items.length -= head;
      head = 0;
    }
    this.head = head;
  }
}
