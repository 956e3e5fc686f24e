/**
 * The failure policy: what decides while the primary store fails. The fallback store if there is
 * one, else `skipOnError` (allow), else fail closed (deny; adapters answer 503 + Retry-After).
 * This file holds the pieces of it that are plain data: the fallback's share of the limit, and the
 * check that a fallback is not the primary under another name.
 */
import { FloodgateError, show } from '../errors.js';
import type { Policy } from '../types.js';

/**
 * Policies for the fallback store. A fallback in process memory counts per process, so with N
 * processes the fleet would admit N times the limit; `fallbackShare` (0 < share <= 1) scales each
 * limit and burst to this process's share, e.g. 1/4 for four processes. Rounded down, at least 1.
 */
export function fallbackPolicies(policies: readonly Policy[], share: number): readonly Policy[] {
  if (share === 1) return policies;
  return policies.map((policy) =>
    Object.freeze({
      ...policy,
      limit: Math.max(1, Math.floor(policy.limit * share)),
      burst: Math.max(1, Math.floor(policy.burst * share)),
    }),
  );
}

export function checkFallbackShare(value: unknown): number {
  if (value === undefined) return 1;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > 1) {
    throw new FloodgateError(
      'FLOODGATE_INVALID_OPTION',
      `fallbackShare ${show(value)} must be a number above 0 and at most 1 (this process's share of the limit), like 0.25 for four processes`,
    );
  }
  return value;
}

/**
 * Whether two storage URIs name the same backend, so the fallback would fail together with the
 * primary. Query parameters (a prefix, a timeout) do not make a different backend. Every
 * `memory://` is its own store, so two of them are not the same.
 */
export function sameBackend(a: string, b: string): boolean {
  const normal = (uri: string) =>
    uri
      .trim()
      .toLowerCase()
      .replace(/\?.*$/, '')
      .replace(/\/(0)?$/, '')
      .replace('//localhost', '//127.0.0.1');
  const x = normal(a);
  return !x.startsWith('memory:') && x === normal(b);
}
