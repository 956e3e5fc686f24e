/**
 * Storage URIs: one string picks and configures a store (DESIGN.md "Storage URIs").
 *   memory://[?maxKeys=N]
 *   sqlite:///relative.db · sqlite:////absolute/path.db · sqlite:///:memory:
 *   redis://[user:pass@]host:port/db · rediss://… · redis+unix:///path.sock
 *   redis+sentinel://[:pass@]h1:26379,h2:26379/mymaster[/db] · redis+cluster://h1:7000,h2:7001
 * Query parameters set store options (`?prefix=app:&timeoutMs=100`).
 */
import { FloodgateError, show } from './errors.js';
import { MemoryStore } from './stores/memory.js';
import { MultiStore, type MultiStoreOptions } from './stores/multi.js';
import { RedisStore } from './stores/redis/index.js';
import { SqliteStore } from './stores/sqlite/index.js';
import type { Store } from './types.js';

const EXAMPLES =
  'write one of "memory://", "sqlite:///limits.db", "sqlite:////var/lib/app/limits.db", "redis://localhost:6379/0", ' +
  '"rediss://host:6380", "redis+unix:///run/redis.sock", "redis+sentinel://h1:26379,h2:26379/mymaster", "redis+cluster://h1:7000,h2:7001"';

/** Split "scheme://rest?query" into its parts; query values are strings. */
export function splitUri(uri: string): { scheme: string; rest: string; query: Record<string, string> } {
  const match = /^([a-z][a-z0-9+.-]*):\/\/([^?]*)(?:\?(.*))?$/i.exec(uri);
  if (!match) throw invalidUri(uri, 'it has no scheme');
  const query: Record<string, string> = {};
  for (const [name, value] of new URLSearchParams(match[3] ?? '')) query[name] = value;
  return { scheme: match[1].toLowerCase(), rest: match[2], query };
}

export function invalidUri(uri: string, why: string): FloodgateError {
  return new FloodgateError(
    'FLOODGATE_INVALID_URI',
    `${show(redact(uri))} is not a storage URI (${why}); ${EXAMPLES}`,
  );
}

/** Hide a password in a URI before it reaches an error message or a log. */
export function redact(uri: string): string {
  return uri.replace(/\/\/([^/@]*?):([^/@]*)@/, '//$1:***@');
}

/** Turn a numeric query parameter into a number, or throw naming it. */
export function numberParam(uri: string, name: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw invalidUri(uri, `?${name}=${value} is not a number`);
  return n;
}

/** Create a store from a URI. Drivers (better-sqlite3, ioredis) are loaded only for their schemes. */
export function createStore(uri: string): Store;
/** Create a MultiStore from an ordered list of URIs (docs/resilience.md, "Multi-store"). */
export function createStore(uris: readonly string[], options?: MultiStoreOptions): MultiStore;
export function createStore(uri: string | readonly string[], options?: MultiStoreOptions): Store {
  if (Array.isArray(uri)) return createMultiStore(uri, options);
  if (options !== undefined) {
    throw new FloodgateError(
      'FLOODGATE_INVALID_OPTION',
      'createStore options are for a list of URIs, like createStore(["redis://a:6379", "redis://b:6379"], { strategy: "first-healthy" })',
    );
  }
  if (typeof uri !== 'string') {
    throw new FloodgateError('FLOODGATE_INVALID_URI', `store ${show(uri)} is not a URI string; ${EXAMPLES}`);
  }
  const { scheme, rest, query } = splitUri(uri);
  switch (scheme) {
    case 'memory': {
      if (rest !== '') throw invalidUri(uri, 'memory:// takes no host or path');
      const { prefix, maxKeys, ...unknown } = query;
      rejectUnknownParams(uri, unknown, ['prefix', 'maxKeys']);
      const store = new MemoryStore(
        maxKeys === undefined ? {} : { maxKeys: numberParam(uri, 'maxKeys', maxKeys) },
      );
      return prefix === undefined ? store : withPrefix(store, prefix);
    }
    case 'sqlite':
      return SqliteStore.fromUri(uri);
    case 'redis':
    case 'rediss':
    case 'redis+unix':
    case 'redis+sentinel':
    case 'redis+cluster':
      return RedisStore.fromUri(uri);
    default:
      throw invalidUri(uri, `unknown scheme ${show(`${scheme}://`)}`);
  }
}

function createMultiStore(uris: readonly string[], options: MultiStoreOptions | undefined): MultiStore {
  if (uris.length === 0) {
    throw new FloodgateError('FLOODGATE_INVALID_URI', `a store list needs at least one URI; ${EXAMPLES}`);
  }
  const seen = new Set<string>();
  for (const uri of uris) {
    if (typeof uri !== 'string') {
      throw new FloodgateError(
        'FLOODGATE_INVALID_URI',
        `store ${show(uri)} is not a URI string; ${EXAMPLES}`,
      );
    }
    if (seen.has(uri) && !uri.startsWith('memory:')) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_URI',
        `${show(redact(uri))} is listed twice; list each store once`,
      );
    }
    seen.add(uri);
  }
  // Validate the options before opening any connection.
  MultiStore.checkOptions(options ?? {});
  const stores: Store[] = [];
  try {
    for (const uri of uris) stores.push(createStore(uri));
    return new MultiStore(stores, options, true);
  } catch (error) {
    for (const store of stores) void store.close().catch(() => {});
    throw error;
  }
}

export function rejectUnknownParams(
  uri: string,
  unknown: Record<string, string>,
  known: readonly string[],
): void {
  const names = Object.keys(unknown);
  if (names.length > 0) {
    throw invalidUri(uri, `unknown parameter ?${names[0]}=; the parameters are ${known.join(', ')}`);
  }
}

/** Attach a URI's `?prefix=` to a store as the default its limiters use. */
export function withPrefix<T extends Store>(store: T, prefix: string): T {
  Object.defineProperty(store, 'defaults', { value: Object.freeze({ prefix }), enumerable: true });
  return store;
}
