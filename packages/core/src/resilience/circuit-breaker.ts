/**
 * Circuit breaker in front of the primary store. After `threshold` failures within `windowMs` (or
 * one missed deadline, when the store has answered nothing at all since that call was sent) it
 * opens: the primary is not called at all for `cooldownMs`, so a dead backend costs a branch per
 * request instead of a timeout. Then one request is let through as a probe (half-open): success
 * closes the breaker, failure opens it for another cool-down. While the probe is in flight every
 * other request is answered without the primary, so a dead backend never sees a stampede.
 */
import { monotonicClock } from '../clock.js';
import { assertKnownOptions, FloodgateError, show } from '../errors.js';
import type { Clock } from '../types.js';
import { wholeNumberOption } from './check.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Failures within `windowMs` that open the breaker: an integer from 1 to 10000. @default 5 */
  threshold?: number;
  /** How far back failures are counted, in ms (1 to 3600000). @default 5000 */
  windowMs?: number;
  /** How long the primary is skipped once open, in ms (1 to 3600000). @default 500 */
  cooldownMs?: number;
}

export interface BreakerSettings {
  readonly threshold: number;
  readonly windowMs: number;
  readonly cooldownMs: number;
}

export const BREAKER_OPTION_NAMES = ['threshold', 'windowMs', 'cooldownMs'] as const;

export const DEFAULT_BREAKER: BreakerSettings = Object.freeze({
  threshold: 5,
  windowMs: 5000,
  // Short on purpose: a probe every 500 ms is nothing for a dead backend (the client refuses at once,
  // or the probe waits one deadline), and a backend that comes back is used again within ~0.5 s.
  cooldownMs: 500,
});

/** What the breaker lets one call do. */
export type Admission = 'call' | 'probe' | 'skip';

export interface BreakerSnapshot {
  readonly state: BreakerState;
  /** Failures counted in the current window (closed state). */
  readonly failures: number;
  readonly threshold: number;
  readonly windowMs: number;
  readonly cooldownMs: number;
  /** Milliseconds until a probe may be sent; 0 unless open. */
  readonly retryInMs: number;
  /** Times the breaker has opened since it was created. */
  readonly opens: number;
}

/** Validate `breaker` options: an object (all fields optional) or `false` to turn the breaker off. */
export function parseBreakerOptions(value: unknown): BreakerSettings | false {
  if (value === undefined || value === true) return DEFAULT_BREAKER;
  if (value === false) return false;
  if (value === null || typeof value !== 'object') {
    throw new FloodgateError(
      'FLOODGATE_INVALID_OPTION',
      `breaker ${show(value)} must be an object or false, like { threshold: 5, windowMs: 5000, cooldownMs: 500 }`,
    );
  }
  assertKnownOptions(value, BREAKER_OPTION_NAMES, 'breaker');
  const options = value as BreakerOptions;
  return Object.freeze({
    threshold: wholeNumberOption(
      options.threshold,
      DEFAULT_BREAKER.threshold,
      'breaker.threshold',
      1,
      10_000,
    ),
    windowMs: wholeNumberOption(options.windowMs, DEFAULT_BREAKER.windowMs, 'breaker.windowMs', 1, 3_600_000),
    cooldownMs: wholeNumberOption(
      options.cooldownMs,
      DEFAULT_BREAKER.cooldownMs,
      'breaker.cooldownMs',
      1,
      3_600_000,
    ),
  });
}

export class CircuitBreaker {
  private current: BreakerState = 'closed';
  /** Times of recent failures (closed state), oldest first; never longer than `threshold`. */
  private readonly failureTimes: number[] = [];
  private openedAt = 0;
  private probing = false;
  private openCount = 0;
  /** When the primary last answered anything (a result or an error reply). */
  private lastAnswerAt = Number.NEGATIVE_INFINITY;
  /** Calls still waiting on the primary, told when the breaker opens. */
  private readonly waiting = new Set<() => void>();

  constructor(
    readonly settings: BreakerSettings,
    private readonly onChange: (from: BreakerState, to: BreakerState) => void = () => {},
    private readonly clock: Clock = monotonicClock,
  ) {}

  get state(): BreakerState {
    return this.current;
  }

  /** Decide what this call may do: call the primary, be the one probe, or skip the primary. */
  admit(): Admission {
    if (this.current === 'closed') return 'call';
    if (this.probing) return 'skip';
    if (this.current === 'open' && this.clock() - this.openedAt < this.settings.cooldownMs) return 'skip';
    this.probing = true;
    this.move('half-open');
    return 'probe';
  }

  /** The primary answered a call admitted as `admission`. */
  succeeded(admission: Admission): void {
    this.lastAnswerAt = this.clock();
    if (admission === 'probe') {
      this.probing = false;
      this.failureTimes.length = 0;
      this.move('closed');
    }
  }

  /**
   * The primary failed on a call admitted as `admission`. For a missed deadline, pass when the call
   * was sent: if the store has answered nothing at all since then, it is hung, not slow, and the
   * breaker opens on this one timeout instead of waiting for `threshold` of them (every call sent
   * meanwhile would wait out its own deadline too). An error reply is an answer.
   */
  failed(admission: Admission, timedOutCallSentAt?: number): void {
    const now = this.clock();
    const silent = timedOutCallSentAt !== undefined && this.lastAnswerAt < timedOutCallSentAt;
    if (timedOutCallSentAt === undefined) this.lastAnswerAt = now;
    if (admission === 'probe') {
      this.probing = false;
      this.open(now);
      return;
    }
    if (admission !== 'call' || this.current !== 'closed') return;
    if (silent) {
      this.open(now);
      return;
    }
    const times = this.failureTimes;
    while (times.length > 0 && now - times[0] >= this.settings.windowMs) times.shift();
    times.push(now);
    if (times.length >= this.settings.threshold) this.open(now);
  }

  /**
   * Call `listener` once if the breaker opens; returns the function that unregisters it. Calls in
   * flight when the breaker opens need not wait out their own deadline: the primary is known to be
   * failing, so they are answered by the failure policy at once.
   */
  onOpen(listener: () => void): () => void {
    this.waiting.add(listener);
    return () => this.waiting.delete(listener);
  }

  /** Milliseconds until the next probe may go out (0 when not open). */
  retryInMs(): number {
    if (this.current !== 'open') return 0;
    return Math.max(0, Math.ceil(this.openedAt + this.settings.cooldownMs - this.clock()));
  }

  snapshot(): BreakerSnapshot {
    const now = this.clock();
    const failures =
      this.current === 'closed'
        ? this.failureTimes.filter((t) => now - t < this.settings.windowMs).length
        : this.failureTimes.length;
    return {
      state: this.current,
      failures,
      threshold: this.settings.threshold,
      windowMs: this.settings.windowMs,
      cooldownMs: this.settings.cooldownMs,
      retryInMs: this.retryInMs(),
      opens: this.openCount,
    };
  }

  private open(now: number): void {
    this.openedAt = now;
    this.failureTimes.length = 0;
    if (this.current !== 'open') this.openCount++;
    this.move('open');
    if (this.waiting.size > 0) {
      const listeners = [...this.waiting];
      this.waiting.clear();
      for (const listener of listeners) listener();
    }
  }

  private move(to: BreakerState): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    this.onChange(from, to);
  }
}
