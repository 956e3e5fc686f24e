import { FloodgateError } from '../errors.js';

/**
 * Settle with `promise` or reject with FLOODGATE_STORE_TIMEOUT after `ms`, whichever comes first.
 * A late answer is dropped; a late rejection is swallowed so it never becomes unhandled.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  if (!Number.isFinite(ms)) return promise;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new FloodgateError('FLOODGATE_STORE_TIMEOUT', `${what} did not answer within ${ms} ms`));
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
