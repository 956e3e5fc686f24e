/**
 * Run `fn` as a plain microtask, after the code running now and the microtasks already queued.
 * Not Node's queueMicrotask: that one makes an AsyncResource and a bound function per call, which
 * showed on the path of every lone check of the Redis and SQLite stores.
 */
export function microtask(fn: () => void): void {
  void RESOLVED.then(fn);
}

const RESOLVED = Promise.resolve();
