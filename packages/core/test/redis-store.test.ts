/**
 * RedisStore behaviour against real redis-server processes: URIs, keys, TTLs, batching, NOSCRIPT,
 * client safety, failures and recovery. Private servers are started on free loopback ports; the
 * machine's Redis on 6379 is used only with a unique prefix.
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ALGORITHM_NAMES } from '../src/algorithms/index.js';
import { FloodgateError } from '../src/errors.js';
import { Limiter } from '../src/limiter.js';
import { parsePolicies } from '../src/rate.js';
import { resetUnsafeWarning } from '../src/stores/redis/driver.js';
import { RedisStore } from '../src/stores/redis/index.js';
import { clientPart, escapeBucket, redisKey } from '../src/stores/redis/keys.js';
import { floodgateScript } from '../src/stores/redis/lua.js';
import { parseRedisUri } from '../src/stores/redis/uri.js';
import { fuzzKeys } from './support/fuzz-keys.js';
import {
  cli,
  type RedisCluster,
  type RedisServer,
  startCluster,
  startRedis,
} from './support/redis-servers.js';

const RUN = `fgt-${process.pid}-${Date.now().toString(36)}`;
let n = 0;
const prefix = () => `${RUN}-${++n}:`;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
process.on('unhandledRejection', onUnhandled);

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  const store = new RedisStore({ url: 'redis://127.0.0.1:6379' });
  await store.clear(`${RUN}-`);
  await store.close();
  expect(unhandled).toEqual([]);
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as FloodgateError).code;
  }
  return undefined;
}

async function rejection(promise: Promise<unknown>): Promise<FloodgateError> {
  try {
    await promise;
  } catch (error) {
    return error as FloodgateError;
  }
  throw new Error('expected a rejection');
}

describe('URIs', () => {
  it('parses every Redis scheme', () => {
    expect(parseRedisUri('redis://alice:s%40cret@10.0.0.5:6380/2?prefix=app:&timeoutMs=100')).toMatchObject({
      mode: 'standalone',
      nodes: [{ host: '10.0.0.5', port: 6380 }],
      username: 'alice',
      password: 's@cret',
      db: 2,
      store: { prefix: 'app:', timeoutMs: 100 },
    });
    expect(parseRedisUri('redis://[::1]')).toMatchObject({ nodes: [{ host: '::1', port: 6379 }] });
    expect(parseRedisUri('redis+unix:///run/redis.sock?db=3')).toMatchObject({
      path: '/run/redis.sock',
      db: 3,
    });
    expect(parseRedisUri('redis+sentinel://:pw@h1:26379,h2/mymaster/4?sentinelPassword=sp')).toMatchObject({
      mode: 'sentinel',
      nodes: [
        { host: 'h1', port: 26379 },
        { host: 'h2', port: 26379 },
      ],
      sentinelName: 'mymaster',
      password: 'pw',
      sentinelPassword: 'sp',
      db: 4,
    });
    expect(parseRedisUri('redis+cluster://h1:7000,h2:7001?maxBatch=32')).toMatchObject({
      mode: 'cluster',
      nodes: [
        { host: 'h1', port: 7000 },
        { host: 'h2', port: 7001 },
      ],
      store: { maxBatch: 32 },
    });
    expect(parseRedisUri('rediss://h:6380?rejectUnauthorized=false').tls).toEqual({
      rejectUnauthorized: false,
    });
  });

  it('rejects malformed URIs naming what to write, without showing the password', () => {
    const cases: [string, RegExp][] = [
      ['redis://user:hunter2@host:99999', /port 99999 is out of range/],
      ['redis://host/abc', /database "abc" is not a number/],
      ['redis+sentinel://h1:26379', /names the master after the hosts/],
      ['redis+cluster://h1:7000/2', /Cluster has only database 0/],
      ['redis+unix://host/x.sock', /absolute path/],
      ['redis://host?tiemoutMs=5', /unknown parameter \?tiemoutMs=/],
      ['redis://host?timeoutMs=abc', /is not a number/],
      ['rediss://host?ca=/no/such/ca.pem', /cannot be read \(ENOENT\)/],
    ];
    for (const [uri, why] of cases) {
      try {
        new RedisStore({ url: uri });
        expect.unreachable(uri);
      } catch (error) {
        expect((error as FloodgateError).code).toBe('FLOODGATE_INVALID_URI');
        expect((error as Error).message).toMatch(why);
        expect((error as Error).message).not.toContain('hunter2');
      }
    }
    expect(codeOf(() => new RedisStore({ url: 'memory://' }))).toBe('FLOODGATE_INVALID_URI');
    expect(codeOf(() => new RedisStore({}))).toBe('FLOODGATE_INVALID_OPTION');
    expect(codeOf(() => new RedisStore({ url: 'redis://h', maxBatch: 0 }))).toBe('FLOODGATE_INVALID_OPTION');
    expect(codeOf(() => new RedisStore({ url: 'redis://h', tiemoutMs: 5 } as never))).toBe(
      'FLOODGATE_UNKNOWN_OPTION',
    );
  });

  it('createStore(redis://…?prefix=) gives a RedisStore whose prefix the Limiter uses', async () => {
    const text = prefix();
    const limiter = new Limiter({ limit: '2/1m', store: `redis://127.0.0.1:6379/0?prefix=${text}` });
    expect(limiter.store).toBeInstanceOf(RedisStore);
    expect(limiter.store.defaults?.prefix).toBe(text);
    const decisions = [];
    for (let i = 0; i < 3; i++) decisions.push((await limiter.consume('user:1')).allowed);
    expect(decisions).toEqual([true, true, false]);
    expect(await cli(6379, 'exists', `${text}2-in-1m:sw{user:1}`)).toBe('1');
    await limiter.close();
    expect((limiter.store as RedisStore).client.status).toBe('end');
  });

  it('reports a missing ioredis as FLOODGATE_MISSING_DRIVER with the install command', async () => {
    // A child process whose require() cannot find ioredis, as for a user who did not install it.
    const script = `
      const Module = require('node:module');
      const resolve = Module._resolveFilename;
      Module._resolveFilename = function (request, ...rest) {
        if (request === 'ioredis') { const e = new Error("Cannot find module 'ioredis'"); e.code = 'MODULE_NOT_FOUND'; throw e; }
        return resolve.call(this, request, ...rest);
      };`;
    const hookDir = mkdtempSync(join(tmpdir(), 'fg-nodriver-'));
    const hook = join(hookDir, 'hide-ioredis.cjs');
    writeFileSync(hook, script);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        '--require',
        hook,
        '--input-type=module',
        '-e',
        `import { createStore } from ${JSON.stringify(new URL('../src/uri.ts', import.meta.url).pathname)};
         try { createStore('redis://localhost:6379'); } catch (e) { console.log(e.code + ' ' + e.message); }`,
      ],
      { timeout: 20_000 },
    ).catch((error) => ({ stdout: String(error.stdout ?? error) }));
    rmSync(hookDir, { recursive: true, force: true });
    expect(stdout).toContain('FLOODGATE_MISSING_DRIVER');
    expect(stdout).toContain('npm install ioredis');
  });
});

describe('keys', () => {
  it('keeps short plain keys readable and hashes long, binary or brace-holding ones', () => {
    expect(clientPart('user:42')).toBe('user:42');
    for (const key of ['', 'a{b}', 'x'.repeat(65), 'ключ', 'line\nbreak', '#looks-hashed']) {
      expect(clientPart(key)).toMatch(/^#[A-Za-z0-9_-]{43}$/);
    }
    expect(clientPart('x'.repeat(10_000))).not.toBe(clientPart('x'.repeat(10_001)));
    // A brace in a bucket cannot move the hash tag.
    expect(redisKey('app{x}:5-in-1m:fw', 'u')).toBe('app%7Bx%7D:5-in-1m:fw{u}');
  });
});

describe('on a private standalone server', () => {
  let server: RedisServer;
  let store: RedisStore;
  beforeAll(async () => {
    server = await startRedis();
    store = new RedisStore({ url: `redis://127.0.0.1:${server.port}` });
  });
  afterAll(async () => {
    await store?.close();
    await server?.stop();
  });

  it('sets safe options on the client it creates (no per-command timer: the store keeps the deadline)', () => {
    const options = store.client.options as {
      enableOfflineQueue: boolean;
      maxRetriesPerRequest: number;
      commandTimeout: number | undefined;
    };
    expect(options.enableOfflineQueue).toBe(false);
    expect(options.maxRetriesPerRequest).toBe(1);
    expect(options.commandTimeout).toBeUndefined();
  });

  it('coalesces concurrent checks: 500 checks, 8 script calls (64 per call), one Redis TIME clock', async () => {
    await cli(server.port, 'config', 'resetstat');
    const policies = parsePolicies(['10/s', '100/1m'], { prefix: prefix(), algorithm: 'sliding-log' });
    const results = await Promise.all(
      Array.from({ length: 500 }, (_, i) => store.consume(`c${i % 50}`, policies, 1)),
    );
    // Each of the 50 clients got exactly 10 (the per-second policy).
    expect(results.filter((r) => r.every((d) => d.allowed)).length).toBe(500);
    const stats = await cli(server.port, 'info', 'commandstats');
    // FCALL once the Redis Function is loaded, EVALSHA (or EVAL after NOSCRIPT) before: 8 calls that
    // ran, whichever way (a NOSCRIPT EVALSHA counts as a failed call).
    const calls = (name: string) => {
      const match = new RegExp(`cmdstat_${name}:calls=(\\d+),.*failed_calls=(\\d+)`).exec(stats);
      return match === null ? 0 : Number(match[1]) - Number(match[2]);
    };
    expect(calls('evalsha') + calls('fcall') + calls('eval')).toBe(8);
    const denied = await store.consume('c0', policies, 1);
    expect(denied.map((d) => d.allowed)).toEqual([false, true]);
    expect(denied[0].retryAfterMs).toBeGreaterThan(0);
    expect(denied[0].retryAfterMs).toBeLessThanOrEqual(1000);
  });

  it('one call mixing routes, costs, peeks and a repeated client decides as the same checks made one at a time', async () => {
    // Token buckets over an hour: the few ms between the two runs refill nothing a floor can see.
    const routes = (p: string) => ({
      one: parsePolicies(['5/1h'], { prefix: `${p}a:`, algorithm: 'token-bucket' }),
      two: parsePolicies(['3/1h', '10/1h'], { prefix: `${p}b:`, algorithm: 'token-bucket' }),
    });
    // Eight checks: a flush of more than eight is split in two when nothing is in flight.
    type Step = { route: 'one' | 'two'; key: string; cost: number | 'peek' };
    const steps: Step[] = [
      { route: 'one', key: 'k1', cost: 1 },
      { route: 'one', key: 'k1', cost: 2 },
      { route: 'two', key: 'k1', cost: 1 },
      { route: 'two', key: 'k1', cost: 2 },
      { route: 'one', key: 'k1', cost: 'peek' },
      { route: 'two', key: 'k2', cost: 4 },
      { route: 'one', key: 'k1', cost: 3 },
      { route: 'two', key: 'k1', cost: 1 },
    ];
    const run = (p: string, together: boolean) => {
      const r = routes(p);
      const one = (s: Step) =>
        s.cost === 'peek' ? store.peek(s.key, r[s.route]) : store.consume(s.key, r[s.route], s.cost);
      return together
        ? Promise.all(steps.map(one))
        : steps.reduce(
            async (done, s) => [...(await done), await one(s)],
            Promise.resolve([] as Awaited<ReturnType<typeof one>>[]),
          );
    };
    const callsBefore = store.stats.calls;
    const batched = await run(prefix(), true);
    expect(store.stats.calls - callsBefore).toBe(1);
    const serial = await run(prefix(), false);
    const shape = (results: typeof batched) =>
      results.map((r) => r.map((d) => `${d.allowed ? 'ok' : 'no'}:${d.remaining}`).join(' '));
    expect(shape(batched)).toEqual(shape(serial));
    expect(shape(batched)).toEqual([
      'ok:4',
      'ok:2',
      'ok:2 ok:9',
      'ok:0 ok:7',
      'ok:2',
      'no:3 ok:10',
      'no:2',
      'no:0 ok:7',
    ]);
  });

  it('10,000 fuzzed keys (any Unicode, binary, braces, CR/LF, NUL, up to 1 MB): each one bounded key of its own, with a TTL', async () => {
    const text = prefix();
    const policies = parsePolicies('1/min', { prefix: text });
    const bucket = escapeBucket(policies[0].bucket);
    const keys = fuzzKeys(10_000);
    const checkAll = async () => {
      const decisions = [];
      for (let i = 0; i < keys.length; i += 500) {
        const chunk = keys.slice(i, i + 500);
        decisions.push(...(await Promise.all(chunk.map((key) => store.consume(key, policies, 1)))));
      }
      return decisions.map((d) => d[0].allowed);
    };
    // Admitted once each, then denied: no two keys share a count.
    expect((await checkAll()).filter(Boolean).length).toBe(keys.length);
    expect((await checkAll()).filter(Boolean).length).toBe(0);
    const client = new Redis(server.port, '127.0.0.1');
    try {
      const stored: string[] = [];
      for await (const batch of client.scanStream({ match: `${text}*`, count: 1000 })) stored.push(...batch);
      expect(stored.length).toBe(keys.length);
      expect(new Set(stored)).toEqual(
        new Set(keys.map((key) => redisKey(policies[0].bucket, clientPart(key)))),
      );
      for (const key of stored) {
        // The client part is short printable ASCII without braces: it is the whole hash tag.
        expect(key.startsWith(`${bucket}{`) && key.endsWith('}')).toBe(true);
        expect(key.slice(bucket.length + 1, -1)).toMatch(/^[\x20-\x7a\x7c\x7e]{1,64}$/);
      }
      const ttls = (await client.pipeline(stored.map((key) => ['pttl', key])).exec()) ?? [];
      expect(ttls.filter(([, ttl]) => !((ttl as number) > 0 && (ttl as number) <= 120_000))).toEqual([]);
    } finally {
      client.disconnect();
    }
  }, 60_000);

  it('gives every key a TTL no longer than the state matters, for every algorithm', async () => {
    const text = prefix();
    for (const algorithm of ALGORITHM_NAMES) {
      const policies = parsePolicies({ limit: 5, window: '10s' }, { prefix: text, algorithm });
      await store.consume('ttl', policies, 2);
    }
    const keys = (await cli(server.port, '--scan', '--pattern', `${text}*`)).split('\n').filter(Boolean);
    expect(keys.length).toBe(6);
    for (const key of keys) {
      const ttl = Number(await cli(server.port, 'pttl', key));
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(20_000); // sliding window keeps the previous window: at most 2 windows
    }
  });

  it('recovers from SCRIPT FLUSH (NOSCRIPT): loads the script again and answers', async () => {
    const policies = parsePolicies('3/1m', { prefix: prefix() });
    expect((await store.consume('n', policies, 1))[0].remaining).toBe(2);
    expect(await cli(server.port, 'script', 'flush')).toBe('OK');
    expect((await store.consume('n', policies, 1))[0].remaining).toBe(1);
    expect(await cli(server.port, 'script', 'exists', '0000000000000000000000000000000000000000')).toBe('0');
    expect((await store.consume('n', policies, 1))[0].remaining).toBe(0);
  });

  it('recovers from FUNCTION FLUSH: the check goes by EVALSHA, then the function is loaded again', async () => {
    const policies = parsePolicies('3/1m', { prefix: prefix() });
    expect((await store.consume('f', policies, 1))[0].remaining).toBe(2);
    expect(await cli(server.port, 'function', 'flush')).toBe('OK');
    expect((await store.consume('f', policies, 1))[0].remaining).toBe(1);
    await store.consume('f2', policies, 1); // the next call loads the library again
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await cli(server.port, 'function', 'list')).toContain(floodgateScript().functionName);
    await cli(server.port, 'config', 'resetstat');
    expect((await store.consume('f', policies, 1))[0].remaining).toBe(0);
    expect(await cli(server.port, 'info', 'commandstats')).toMatch(/cmdstat_fcall:calls=1,/);
  });

  it('a client given without FCALL (ioredis before 5): every check goes by EVALSHA, exactly', async () => {
    const client = new Redis({ port: server.port, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    Object.defineProperty(client, 'fcall', { value: undefined });
    const given = new RedisStore({ client });
    try {
      const policies = parsePolicies('3/1m', { prefix: prefix() });
      await given.consume('old', policies, 1); // the script is cached by now
      await cli(server.port, 'config', 'resetstat');
      const remaining: number[] = [];
      for (let i = 0; i < 3; i++) remaining.push((await given.consume('old', policies, 1))[0].remaining);
      expect(remaining).toEqual([1, 0, 0]);
      const stats = await cli(server.port, 'info', 'commandstats');
      expect(stats).toMatch(/cmdstat_evalsha:calls=3,/);
      expect(stats).not.toMatch(/cmdstat_fcall:/);
      expect(stats).not.toMatch(/cmdstat_function/);
    } finally {
      await given.close();
      await client.quit();
    }
  });

  it('a client given that throws instead of rejecting: its checks reject (a Limiter degrades), nothing is thrown uncaught', async () => {
    const client = new Redis({ port: server.port, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    await new Promise((resolve) => client.once('ready', resolve));
    for (const name of ['fcall', 'evalsha', 'call']) {
      Object.defineProperty(client, name, {
        value: () => {
          throw new TypeError(`${name} is not supported by this wrapper`);
        },
      });
    }
    const given = new RedisStore({ client });
    const limiter = new Limiter({ limit: '3/min', name: 'wrapped', store: given, skipOnError: true });
    try {
      const policies = parsePolicies('3/1m', { prefix: prefix() });
      for (let i = 0; i < 2; i++) {
        const error = await rejection(given.consume('w', policies, 1));
        expect(error).toBeInstanceOf(FloodgateError);
        expect(error.code).toBe('FLOODGATE_STORE_FAILED');
        expect(String((error.cause as Error).message)).toContain('evalsha is not supported by this wrapper');
      }
      const decision = await limiter.consume('w');
      expect(decision.degraded).toBe('open');
      expect(decision.allowed).toBe(true);
    } finally {
      await limiter.close();
      await given.close();
      client.disconnect();
    }
  });

  it('rejects with a FloodgateError for a Redis error, never a raw value', async () => {
    const text = prefix();
    const policies = parsePolicies('3/1m', { prefix: text });
    await cli(server.port, 'hset', redisKey(policies[0].bucket, 'wrongtype'), 'f', 'v');
    const error = await rejection(store.consume('wrongtype', policies, 1));
    expect(error).toBeInstanceOf(FloodgateError);
    expect(error.code).toBe('FLOODGATE_STORE_FAILED');
    expect(String((error.cause as Error).message)).toContain('WRONGTYPE');
  });

  it('a batch that meets a key of another type writes nothing, not even its earlier checks', async () => {
    const text = prefix();
    const policies = parsePolicies('3/1m', { prefix: text });
    await cli(server.port, 'hset', redisKey(policies[0].bucket, 'hash'), 'f', 'v');
    // One call: the first check is fine, the second meets the hash.
    const [first, second] = await Promise.allSettled([
      store.consume('fine', policies, 1),
      store.consume('hash', policies, 1),
    ]);
    expect(first.status).toBe('rejected');
    expect(second.status).toBe('rejected');
    expect(await cli(server.port, 'exists', redisKey(policies[0].bucket, 'fine'))).toBe('0');
    expect(await cli(server.port, 'type', redisKey(policies[0].bucket, 'hash'))).toBe('hash');
  });

  it('keeps a window’s expiry on later writes (KEEPTTL) and moves a bucket’s forward', async () => {
    const text = prefix();
    const expiryOf = async (policies: ReturnType<typeof parsePolicies>) =>
      Number(await cli(server.port, 'pexpiretime', redisKey(policies[0].bucket, 'e')));
    const window = parsePolicies({ limit: 100, window: '1m' }, { prefix: text, algorithm: 'fixed-window' });
    const bucket = parsePolicies({ limit: 100, window: '1m' }, { prefix: text, algorithm: 'token-bucket' });
    await store.consume('e', window, 1);
    await store.consume('e', bucket, 1);
    const [windowAt, bucketAt] = [await expiryOf(window), await expiryOf(bucket)];
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await store.consume('e', window, 1))[0].remaining).toBe(98);
    expect((await store.consume('e', bucket, 1))[0].remaining).toBe(98);
    expect(await expiryOf(window)).toBe(windowAt); // same window, same end
    expect(await expiryOf(bucket)).toBeGreaterThan(bucketAt); // 20 ms later and one more token to refill
    expect(windowAt - Date.now()).toBeGreaterThan(55_000);
    expect(windowAt - Date.now()).toBeLessThanOrEqual(60_001);
  });

  it('splits a flush into two calls when nothing is in flight, so Redis and the client overlap', async () => {
    const policies = parsePolicies('1000/1m', { prefix: prefix() });
    const before = { ...store.stats };
    await Promise.all(Array.from({ length: 8 }, (_, i) => store.consume(`s${i}`, policies, 1)));
    expect(store.stats.calls - before.calls).toBe(1); // 8 checks: one call
    await Promise.all(Array.from({ length: 64 }, (_, i) => store.consume(`s${i}`, policies, 1)));
    expect(store.stats.calls - before.calls).toBe(3); // 64 checks: two calls of 32
    expect(store.stats.checks - before.checks).toBe(72);
  });

  it('bounds the checks waiting for Redis: past 16384 a check fails at once, the rest are all answered', async () => {
    const policies = parsePolicies('1000000/1m', { prefix: prefix(), algorithm: 'fixed-window' });
    const settled = await Promise.allSettled(
      Array.from({ length: 16_400 }, (_, i) => store.consume(`w${i % 1000}`, policies, 1)),
    );
    const rejected = settled.filter((r) => r.status === 'rejected');
    expect(rejected.length).toBe(16);
    expect((rejected[0] as PromiseRejectedResult).reason.code).toBe('FLOODGATE_STORE_UNAVAILABLE');
    // Sent 64 calls at a time (the in-flight bound), each batch answered in order.
    const [last] = await store.consume('w999', policies, 1);
    expect(last.remaining).toBe(1_000_000 - 17);
  });

  it('clear removes only floodgate keys under the prefix', async () => {
    const text = prefix();
    const policies = parsePolicies('3/1m', { prefix: text });
    await store.consume('a', policies, 1);
    await cli(server.port, 'set', `${text}foreign`, '1');
    await cli(server.port, 'set', `${text}x{y}`, '1');
    expect(await store.clear(text)).toBe(1);
    expect(await cli(server.port, 'exists', `${text}foreign`, `${text}x{y}`)).toBe('2');
  });

  it('shares counts between two stores (and processes) through the Redis clock', async () => {
    const other = new RedisStore({ url: `redis://127.0.0.1:${server.port}` });
    const policies = parsePolicies(
      { limit: 3, window: '1m' },
      { prefix: prefix(), algorithm: 'fixed-window' },
    );
    await store.consume('shared', policies, 2);
    const [decision] = await other.consume('shared', policies, 1);
    expect(decision.remaining).toBe(0);
    expect(decision.resetMs).toBeGreaterThan(59_000);
    expect(decision.resetMs).toBeLessThanOrEqual(60_000);
    await other.close();
  });

  it('does not close a client it was given', async () => {
    const client = new Redis({ port: server.port, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    const given = new RedisStore({ client });
    expect((await given.health()).ok).toBe(true);
    await given.close();
    expect(client.status).toBe('ready');
    await expect(given.consume('k', parsePolicies('1/s', { prefix: prefix() }), 1)).rejects.toMatchObject({
      code: 'FLOODGATE_CLOSED',
    });
    await client.quit();
  });
});

describe('unsafe user clients', () => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  beforeAll(() => {
    resetUnsafeWarning();
    process.on('warning', onWarning);
  });
  afterEach(() => {
    warnings.length = 0;
  });
  afterAll(() => {
    process.off('warning', onWarning);
  });

  it('warns once, naming the options to set; a safe client gets no warning', async () => {
    const safe = new Redis({
      port: 6379,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      lazyConnect: true,
    });
    new RedisStore({ client: safe });
    await new Promise((r) => setImmediate(r));
    expect(warnings).toEqual([]);
    const unsafe = [
      new Redis({ port: 6379, lazyConnect: true }),
      new Redis({ port: 6379, lazyConnect: true }),
    ];
    for (const client of unsafe) new RedisStore({ client });
    await new Promise((r) => setImmediate(r));
    expect(warnings.length).toBe(1);
    expect((warnings[0] as Error & { code: string }).code).toBe('FLOODGATE_UNSAFE_REDIS_CLIENT');
    expect(warnings[0].message).toContain('enableOfflineQueue on, maxRetriesPerRequest 20:');
    expect(warnings[0].message).toContain('maxRetriesPerRequest: 1');
    for (const client of [safe, ...unsafe]) client.disconnect();
  });
});

describe('when Redis is down', () => {
  it('rejects fast with FLOODGATE_STORE_UNAVAILABLE, then recovers when Redis comes back', async () => {
    const server = await startRedis();
    const port = server.port;
    const store = new RedisStore({ url: `redis://127.0.0.1:${port}` });
    const policies = parsePolicies('100/1m', { prefix: prefix() });
    expect((await store.consume('d', policies, 1))[0].allowed).toBe(true);
    await server.stop();
    for (let i = 0; i < 5; i++) {
      const started = Date.now();
      const error = await rejection(store.consume('d', policies, 1));
      expect(error).toBeInstanceOf(FloodgateError);
      expect(error.code).toBe('FLOODGATE_STORE_UNAVAILABLE');
      expect(Date.now() - started).toBeLessThan(1000);
    }
    expect(await store.health()).toMatchObject({ ok: false });
    const restarted = await startRedis({ port });
    const deadline = Date.now() + 5000;
    let recovered = false;
    while (!recovered && Date.now() < deadline) {
      recovered = await store.consume('d', policies, 1).then(
        () => true,
        () => false,
      );
      if (!recovered) await new Promise((r) => setTimeout(r, 50));
    }
    // A fresh server: no script cached (NOSCRIPT handled) and no count kept.
    expect(recovered).toBe(true);
    expect((await store.peek('d', policies))[0].remaining).toBe(99);
    await store.close();
    await restarted.stop();
  }, 20_000);

  it('a frozen server (SIGSTOP): every command fails at timeoutMs with FLOODGATE_STORE_TIMEOUT, on its own client and on one given to it', async () => {
    const server = await startRedis();
    const own = new RedisStore({ url: `redis://127.0.0.1:${server.port}`, timeoutMs: 300 });
    const client = new Redis({ port: server.port, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    const given = new RedisStore({ client, timeoutMs: 300 });
    const policies = parsePolicies('100/1m', { prefix: prefix() });
    for (const store of [own, given])
      expect((await store.consume('f', policies, 1))[0].remaining).toBe(store === own ? 99 : 98);
    server.signal('SIGSTOP');
    try {
      for (const store of [own, given]) {
        const started = Date.now();
        const [check, lone, reset] = await Promise.all([
          rejection(store.consume('f', policies, 1)),
          rejection(Promise.all(Array.from({ length: 100 }, () => store.consume('g', policies, 1)))),
          rejection(store.reset('h', [policies[0].bucket])),
        ]);
        const waited = Date.now() - started;
        for (const error of [check, lone, reset]) {
          expect(error).toBeInstanceOf(FloodgateError);
          expect(error.code).toBe('FLOODGATE_STORE_TIMEOUT');
          expect(error.message).toMatch(
            /^FLOODGATE_STORE_TIMEOUT: redis (standalone redis:\/\/127\.0\.0\.1:\d+|client) did not answer within 300 ms$/,
          );
        }
        expect(waited).toBeGreaterThanOrEqual(290);
        expect(waited).toBeLessThan(1500);
        expect((await store.health()).ok).toBe(false);
      }
    } finally {
      server.signal('SIGCONT');
    }
    // The late answers are dropped; the frozen checks did run once Redis woke up, and new ones work.
    for (const store of [own, given]) {
      const [decision] = await store.consume('f', policies, 1);
      expect(decision.allowed).toBe(true);
    }
    expect((await own.peek('f', policies))[0].remaining).toBe(100 - 2 - 2 - 2);
    await own.close();
    await given.close();
    client.disconnect();
    await server.stop();
  }, 20_000);

  it('at boot with no server: a check fails within the connect timeout, and the store works once Redis starts', async () => {
    const server = await startRedis();
    const port = server.port;
    await server.stop();
    const store = new RedisStore({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 300 });
    const policies = parsePolicies('5/1m', { prefix: prefix() });
    const started = Date.now();
    const error = await rejection(store.consume('b', policies, 1));
    expect(error.code).toBe('FLOODGATE_STORE_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(1000);
    const late = await startRedis({ port });
    const deadline = Date.now() + 5000;
    let decision: readonly unknown[] | undefined;
    while (decision === undefined && Date.now() < deadline) {
      decision = await store.consume('b', policies, 1).catch(() => undefined);
      if (decision === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    expect(decision).toHaveLength(1);
    await store.close();
    await late.stop();
  }, 20_000);

  it('close() of a store whose first connection the server never answered (frozen at boot) returns within a second', async () => {
    // Connected (TCP, or a TLS handshake the server then refuses) but never ready: a QUIT sent now
    // would wait forever for its reply, so close() must not wait on one.
    const server = await startRedis();
    server.signal('SIGSTOP');
    try {
      const store = new RedisStore({ url: `redis://127.0.0.1:${server.port}`, connectTimeoutMs: 300 });
      const policies = parsePolicies('5/1m', { prefix: prefix() });
      const error = await rejection(store.consume('frozen-boot', policies, 1));
      expect(error.code).toBe('FLOODGATE_STORE_UNAVAILABLE');
      expect(error.message).toContain('no connection within 300 ms');
      expect(store.client.status).toBe('connect');
      const started = Date.now();
      const closed = await Promise.race([
        store.close().then(() => 'closed'),
        new Promise((resolve) => setTimeout(resolve, 3000, 'still closing after 3 s')),
      ]);
      expect(closed).toBe('closed');
      expect(Date.now() - started).toBeLessThan(1500);
      await expect(store.consume('frozen-boot', policies, 1)).rejects.toMatchObject({
        code: 'FLOODGATE_CLOSED',
      });
      // Such a connection can still report an error (its ready check) after close(): it is heard,
      // not thrown or printed by ioredis.
      expect(() => store.client.emit('error', new Error('late ready check'))).not.toThrow();
    } finally {
      await server.stop(); // SIGCONT and SIGKILL at once: the server never answers this client
    }
  });

  it('a check sent right after construction waits for the first connection instead of failing', async () => {
    const store = new RedisStore({ url: 'redis://127.0.0.1:6379' });
    expect(store.client.status).not.toBe('ready');
    const [decision] = await store.consume('boot', parsePolicies('5/1m', { prefix: prefix() }), 1);
    expect(decision.remaining).toBe(4);
    await store.close();
  });
});

describe('on a 3-master Cluster', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startCluster(3);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('keeps one client’s keys for every policy in one slot (no CROSSSLOT) and spreads clients over the nodes', async () => {
    // A generous first-connection wait: this machine may be busy starting other test servers.
    const store = new RedisStore({ url: cluster.uri, connectTimeoutMs: 5000 });
    const text = prefix();
    const policies = parsePolicies(
      [
        { limit: 5, window: '1h', algorithm: 'gcra', name: 'burst' },
        { limit: 100, window: '1h', algorithm: 'sliding-window', name: 'hour' },
        { limit: 50, window: '1m', algorithm: 'sliding-log', name: 'minute' },
      ],
      { prefix: text },
    );
    const keys = Array.from({ length: 300 }, (_, i) => `client-${i}`);
    const results = await Promise.all(keys.map((key) => store.consume(key, policies, 1)));
    expect(results.every((r) => r.every((d) => d.allowed))).toBe(true);
    for (const key of keys.slice(0, 5)) {
      const slots = await Promise.all(
        policies.map((p) =>
          cli(cluster.nodes[0].port, 'cluster', 'keyslot', redisKey(p.bucket, clientPart(key))),
        ),
      );
      expect(new Set(slots).size).toBe(1);
    }
    // Every master holds some of the 900 keys.
    const counts = await Promise.all(cluster.nodes.map((node) => cli(node.port, 'dbsize').then(Number)));
    expect(counts.every((c) => c > 0)).toBe(true);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(900);
    expect(await store.clear(text)).toBe(900);
    await store.close();
  });

  it('works with a Cluster client the user created', async () => {
    const client = new Cluster(
      cluster.nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
      { enableOfflineQueue: false, redisOptions: { commandTimeout: 500, maxRetriesPerRequest: 1 } },
    );
    await new Promise((resolve) => client.once('ready', resolve));
    const store = new RedisStore({ client });
    const policies = parsePolicies('2/1m', { prefix: prefix(), algorithm: 'token-bucket' });
    const allowed = [];
    for (let i = 0; i < 3; i++) allowed.push((await store.consume('u', policies, 1))[0].allowed);
    expect(allowed).toEqual([true, true, false]);
    expect((await store.health()).ok).toBe(true);
    await store.close();
    expect(client.status).toBe('ready');
    await client.quit();
  });
});
