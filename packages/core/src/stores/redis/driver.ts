/**
 * ioredis, loaded only when a RedisStore is built (it is an optional peer dependency), and the
 * client settings that keep a rate limiter fast when Redis is slow or gone.
 */
import { createRequire } from 'node:module';
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { FloodgateError } from '../../errors.js';
import type { ParsedRedisUri } from './uri.js';

export type RedisClient = Redis | Cluster;

interface IoredisModule {
  Redis: new (options: RedisOptions) => Redis;
  Cluster: new (nodes: { host: string; port: number }[], options: ClusterOptions) => Cluster;
}

let driver: IoredisModule | undefined;

/** require('ioredis') on first use; a missing driver is a FloodgateError saying what to install. */
export function loadIoredis(): IoredisModule {
  if (driver !== undefined) return driver;
  try {
    const module = createRequire(import.meta.url)('ioredis') as IoredisModule & { default?: unknown };
    driver = { Redis: module.Redis, Cluster: module.Cluster };
    return driver;
  } catch (error) {
    throw new FloodgateError(
      'FLOODGATE_MISSING_DRIVER',
      'the Redis store needs the ioredis package; run "npm install ioredis"',
      { cause: error },
    );
  }
}

export interface ClientSettings {
  /** Connect timeout (ms). */
  connectTimeoutMs: number;
}

/**
 * What the store sets on a client it creates. The ioredis defaults would queue commands without
 * bound while Redis is down and retry each 20 times (a check could wait 70 s); these fail fast and
 * leave the decision to the Limiter's failure policy. No `commandTimeout`: the store bounds each of
 * its commands itself (`timeoutMs`) with one timer for all, where ioredis arms and clears a timer
 * per command, which cost ~8 µs of CPU per check here (as much as a tenth of a lone check).
 */
export function safeOptions(settings: ClientSettings): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: settings.connectTimeoutMs,
    // Reconnect quickly at first, then every second at most, with jitter so processes do not reconnect in lockstep.
    retryStrategy: (attempt: number) =>
      Math.min(50 * 2 ** Math.min(attempt, 5), 1000) + Math.floor(Math.random() * 100),
  };
}

/** Build the ioredis client a URI describes, with the safe settings and any `redisOptions` on top. */
export function createClient(
  parsed: ParsedRedisUri,
  settings: ClientSettings,
  extra: RedisOptions = {},
): RedisClient {
  const { Redis, Cluster } = loadIoredis();
  const auth: RedisOptions = {};
  if (parsed.username !== undefined) auth.username = parsed.username;
  if (parsed.password !== undefined) auth.password = parsed.password;
  if (parsed.connectionName !== undefined) auth.connectionName = parsed.connectionName;
  if (parsed.db !== undefined) auth.db = parsed.db;
  if (parsed.tls !== undefined) auth.tls = parsed.tls;
  const base = { ...safeOptions(settings), ...auth, ...extra };
  switch (parsed.mode) {
    case 'cluster': {
      const { enableOfflineQueue, retryStrategy: _perNode, ...nodeOptions } = base;
      return new Cluster(parsed.nodes, {
        enableOfflineQueue,
        redisOptions: nodeOptions,
        clusterRetryStrategy: (attempt: number) => Math.min(100 * attempt, 1000),
        // Slots move during failover and resharding: retry soon rather than fail the check.
        retryDelayOnFailover: 100,
        retryDelayOnClusterDown: 100,
        retryDelayOnTryAgain: 50,
        maxRedirections: 16,
        slotsRefreshTimeout: settings.connectTimeoutMs,
      });
    }
    case 'sentinel':
      return new Redis({
        ...base,
        sentinels: parsed.nodes,
        name: parsed.sentinelName,
        sentinelPassword: parsed.sentinelPassword,
        sentinelRetryStrategy: (attempt: number) => Math.min(100 * attempt, 1000),
        // Follow +switch-master at once instead of waiting for the old master's socket to fail.
        failoverDetector: true,
      });
    default:
      return parsed.path !== undefined
        ? new Redis({ ...base, path: parsed.path })
        : new Redis({ ...base, host: parsed.nodes[0].host, port: parsed.nodes[0].port });
  }
}

let warned = false;

/**
 * A client the user built with the ioredis defaults makes every check wait through outages (offline
 * queue, 20 retries). Say so once per process, naming the options to set. A command timeout is not
 * needed: the store bounds its own commands (`timeoutMs`).
 */
export function warnIfUnsafe(client: RedisClient): void {
  if (warned) return;
  const unsafe = unsafeSettings(client);
  if (unsafe.length === 0) return;
  warned = true;
  process.emitWarning(
    `The ioredis client given to RedisStore has ${unsafe.join(', ')}: while Redis is down or slow, checks wait ` +
      'instead of failing fast. Create it with { enableOfflineQueue: false, maxRetriesPerRequest: 1 } ' +
      '(for a Cluster: { enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1 } }).',
    { code: 'FLOODGATE_UNSAFE_REDIS_CLIENT' },
  );
}

export function unsafeSettings(client: RedisClient): string[] {
  const cluster = client.isCluster === true;
  const options = client.options as Partial<RedisOptions & ClusterOptions>;
  const perNode: Partial<RedisOptions> = (cluster ? options.redisOptions : options) ?? {};
  const unsafe: string[] = [];
  if (options.enableOfflineQueue !== false) unsafe.push('enableOfflineQueue on');
  const retries = perNode.maxRetriesPerRequest;
  if (!cluster && (retries === null || retries === undefined || retries > 3)) {
    unsafe.push(`maxRetriesPerRequest ${retries === undefined ? 20 : retries}`);
  }
  return unsafe;
}

/** For tests: let the next unsafe client warn again. */
export function resetUnsafeWarning(): void {
  warned = false;
}
