import { monotonicClock } from '../clock.js';
import { FloodgateError } from '../errors.js';
import { type Deadlined, DeadlineQueue } from './deadline-queue.js';

/**
 * Settle with `promise` or reject with FLOODGATE_STORE_TIMEOUT after `ms`, whichever comes first.
 * A late answer is dropped; a late rejection is swallowed so it never becomes unhandled.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  if (!Number.isFinite(ms)) return promise;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(timeoutError(what, ms));
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** One promise watched by a DeadlineWatch. */
class Watched implements Deadlined {
  settled = false;
  constructor(
    readonly deadline: number,
    readonly resolve: (value: unknown) => void,
    readonly reject: (error: unknown) => void,
  ) {}
}

/**
 * `withDeadline` for many calls that share one timeout, with one timer for all of them (see
 * DeadlineQueue) instead of a timer armed and cleared per call: on the hot path of a store that
 * sends a command per check, a timer per command costs more than the rest of the client's work.
 */
export class DeadlineWatch {
  private readonly queue = new DeadlineQueue<Watched>((watched) =>
    watched.reject(timeoutError(this.what, this.ms)),
  );

  constructor(
    private readonly ms: number,
    private readonly what: string,
  ) {}

  /** `promise`, or FLOODGATE_STORE_TIMEOUT once `ms` passed; a late answer or rejection is dropped. */
  watch<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const watched = new Watched(monotonicClock() + this.ms, resolve as (value: unknown) => void, reject);
      this.queue.add(watched);
      promise.then(
        (value) => {
          if (this.queue.settle(watched)) resolve(value);
        },
        (error: unknown) => {
          if (this.queue.settle(watched)) reject(error);
        },
      );
    });
  }
}

function timeoutError(what: string, ms: number): FloodgateError {
  return new FloodgateError('FLOODGATE_STORE_TIMEOUT', `${what} did not answer within ${ms} ms`);
}
