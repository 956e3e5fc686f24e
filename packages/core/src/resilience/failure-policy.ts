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
 * primary. For Redis that is the same server (host and port), whatever the database number,
 * credentials or query parameters; for SQLite the same file. Every `memory://` is its own store,
 * so two of them are not the same.
 */
export function sameBackend(a: string, b: string): boolean {
  const x = backendOf(a);
  return x !== undefined && x === backendOf(b);
}

function backendOf(uri: string): string | undefined {
  const text = uri.trim().replace(/[?#].*$/, '');
  const match = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(text);
  if (!match) return undefined;
  const scheme = match[1].toLowerCase();
  if (scheme === 'memory') return undefined;
  if (!scheme.startsWith('redis') || scheme === 'redis+unix') return `${scheme}://${match[2]}`;
  // redis://[user:pass@]host:port[/db], and comma-separated host lists for sentinel and cluster.
  const hosts = match[2]
    .replace(/^[^@/]*@/, '')
    .replace(/\/.*$/, '')
    .toLowerCase()
    .split(',')
    .map((host) => {
      const withPort = /:\d+$/.test(host) ? host : `${host}:6379`;
      return withPort.replace(/^(localhost|\[::1\]):/, '127.0.0.1:');
    })
    .sort();
  return `redis://${hosts.join(',')}`;
}
