/**
 * Test fixtures shared by the Express, Fastify and Koa adapter tests (imported by relative path):
 * real HTTP requests to real listening servers, RateLimit headers parsed with an RFC 9651 parser, and
 * the checks every adapter must pass the same way (Retry-After exactness, a dead store's 503).
 */
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseList } from 'structured-headers';
import { expect } from 'vitest';
import type {
  DegradedEvent,
  LimitEvent,
  LimiterHooks,
  StoreErrorEvent,
} from '../../src/resilience/events.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import type { AlgorithmName, Decision, Store } from '../../src/types.js';
import { keyHeader } from './fuzz-keys.js';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface Target {
  port?: number;
  socketPath?: string;
}

/** One real HTTP/1.1 request over a fresh connection (no agent pooling, so concurrency is real). */
export function request(
  target: Target,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        ...target,
        path,
        method: options.method ?? 'GET',
        headers:
          options.body === undefined
            ? options.headers
            : { 'content-type': 'application/json', ...options.headers },
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Listen on 127.0.0.1 with an ephemeral port; returns the port. */
export async function listen(server: http.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

export async function close(server: http.Server): Promise<void> {
  server.closeAllConnections?.();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * What one test file opened: servers and limiters, closed by `closeAll()` in its afterEach. Express and
 * Koa apps are plain request listeners (`app`, `app.callback()`), served here on a real port.
 */
export class Opened {
  private readonly servers: http.Server[] = [];
  private readonly limiters: Array<{ close(): Promise<void> }> = [];
  private socketCount = 0;

  /** Close the middleware's limiter after the test; returns the middleware. */
  track<T extends { limiter: { close(): Promise<void> } }>(middleware: T): T {
    this.limiters.push(middleware.limiter);
    return middleware;
  }

  /** Serve `listener` on 127.0.0.1 and an ephemeral port. */
  async serve(listener: http.RequestListener): Promise<Target> {
    const server = http.createServer(listener);
    this.servers.push(server);
    return { port: await listen(server) };
  }

  /** Serve `listener` on a Unix socket: the framework then knows no client address. */
  async serveUnix(listener: http.RequestListener): Promise<Target> {
    this.socketCount += 1;
    const socketPath = join(tmpdir(), `floodgate-adapter-${process.pid}-${this.socketCount}.sock`);
    rmSync(socketPath, { force: true });
    const server = http.createServer(listener);
    this.servers.push(server);
    server.listen(socketPath);
    await once(server, 'listening');
    return { socketPath };
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.servers.splice(0).map(close));
    await Promise.all(this.limiters.splice(0).map((l) => l.close()));
  }
}

/** Unique policy names (`p1`, `p2`, ...), so limiters of one file never share a bucket or warn about it. */
export function names(prefix: string): () => string {
  let seq = 0;
  return () => {
    seq += 1;
    return `${prefix}${seq}`;
  };
}

export interface RateLimitItem {
  name: string;
  params: Map<string, unknown>;
}

/** Parse a draft-11 RateLimit or RateLimit-Policy field with an RFC 9651 parser (throws if invalid). */
export function parseField(value: string | string[] | undefined): RateLimitItem[] {
  if (typeof value !== 'string') throw new Error(`expected one header value, got ${JSON.stringify(value)}`);
  return parseList(value).map((member) => {
    const [name, params] = member;
    if (typeof name !== 'string') throw new Error(`item ${String(name)} is not an sf-string`);
    return { name, params: params as Map<string, unknown> };
  });
}

/** The `r` (remaining) of each item of a reply's draft-11 RateLimit field. */
export function remaining(reply: Reply): unknown[] {
  return parseField(reply.headers.ratelimit).map((i) => i.params.get('r'));
}

/** Every header value is printable ASCII and every number in a rate-limit header is a whole number >= 0. */
export function assertCleanHeaders(headers: http.IncomingHttpHeaders): void {
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value ?? '']) {
      if (!/^[\x20-\x7e]*$/.test(v))
        throw new Error(`header ${name} has a control character: ${JSON.stringify(v)}`);
      if (
        /ratelimit|retry-after/i.test(name) &&
        (/-\d/.test(v.replace(/"[^"]*"/g, '')) || /NaN|Infinity|\d\.\d/.test(v))
      ) {
        throw new Error(`header ${name} has a negative, NaN or fractional number: ${v}`);
      }
    }
  }
}

/**
 * Each key twice, to a server whose limiter allows 1 a minute on `GET /` and reads its key with
 * keyFromHeader(the `x-key` header): admitted, then denied, with clean headers both times. Two keys
 * sharing a count, part of a key leaking into a header, or an error answer each fail it.
 */
export async function expectFuzzedKeysContained(target: Target, keys: readonly string[]): Promise<void> {
  const atOnce = 16;
  for (let i = 0; i < keys.length; i += atOnce) {
    await Promise.all(
      keys.slice(i, i + atOnce).map(async (key) => {
        const headers = { 'x-key': keyHeader(key) };
        const first = await request(target, '/', { headers });
        const second = await request(target, '/', { headers });
        for (const reply of [first, second]) {
          assertCleanHeaders(reply.headers);
          expect(reply.headers['x-injected']).toBeUndefined();
        }
        expect([first.status, second.status], JSON.stringify(key).slice(0, 120)).toEqual([200, 429]);
      }),
    );
  }
}

/** Run `count` requests at once and return their replies. */
export function burst(count: number, send: (i: number) => Promise<Reply>): Promise<Reply[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => send(i)));
}

/** Run `count` requests one after the other and return their replies. */
export async function sequence(count: number, send: () => Promise<Reply>): Promise<Reply[]> {
  const replies = [];
  for (let i = 0; i < count; i++) replies.push(await send());
  return replies;
}

/** The count of each status in `replies`, like { 200: 10, 429: 20 }. */
export function statuses(replies: readonly Reply[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const r of replies) out[r.status] = (out[r.status] ?? 0) + 1;
  return out;
}

/**
 * GET / limited to 10 a minute, hit by 40 requests at once: exactly 10 admitted, and their draft-11
 * `remaining` values are 9 down to 0, each once (two admissions never read the same count).
 */
export async function expectExactUnderBurst(target: Target): Promise<void> {
  const replies = await burst(40, () => request(target, '/'));
  expect(statuses(replies)).toEqual({ 200: 10, 429: 30 });
  const left = replies.filter((r) => r.status === 200).map((r) => Number(remaining(r)[0]));
  expect(left.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
}

/**
 * GET / limited to 3 a minute, with the framework's proxy setting off: five requests, each claiming
 * another address in X-Forwarded-For, all count against the one socket address.
 */
export async function expectForwardedForIgnored(target: Target): Promise<void> {
  const codes = [];
  for (let i = 0; i < 5; i++) {
    const reply = await request(target, '/', { headers: { 'x-forwarded-for': `198.51.100.${i}` } });
    codes.push(reply.status);
  }
  expect(codes).toEqual([200, 200, 200, 429, 429]);
}

/**
 * GET / limited to 2 a minute, with the framework's proxy setting trusting 127.0.0.1: IPv6 clients
 * in one /56 share a count (a third address in it is denied, one in the next /56 is not), and an
 * IPv4-mapped IPv6 address counts as the IPv4 address it carries.
 */
export async function expectIpv6GroupedBy56(target: Target): Promise<void> {
  const from = (ip: string) =>
    request(target, '/', { headers: { 'x-forwarded-for': ip } }).then((r) => r.status);
  expect(await from('2001:db8:1:1::1')).toBe(200);
  expect(await from('2001:db8:1:2::abcd')).toBe(200);
  expect(await from('2001:db8:1:ff:1:2:3:4')).toBe(429);
  expect(await from('2001:db8:1:100::1')).toBe(200);
  expect(await from('203.0.113.9')).toBe(200);
  expect(await from('::ffff:203.0.113.9')).toBe(200);
  expect(await from('203.0.113.9')).toBe(429);
}

/**
 * A limit of 2 a minute with skipFailedRequests: four answers with `failed` status from `failedPath`
 * count nothing, then GET /good is admitted twice and denied the third time.
 */
export async function expectFailuresUncounted(
  target: Target,
  failedPath: string,
  failed: number,
): Promise<void> {
  for (let i = 0; i < 4; i++) expect((await request(target, failedPath)).status).toBe(failed);
  const good = await sequence(3, () => request(target, '/good'));
  expect(good.map((r) => r.status)).toEqual([200, 200, 429]);
}

/**
 * Retry-After is exact with `algorithm`: `serve` limits GET / to 3 requests a minute (`limit: '3/min'`)
 * with `store`, a MemoryStore on a clock this moves by hand. The 4th request is denied with
 * Retry-After = n whole seconds >= 1; a retry at n - 1 seconds is denied again (its Retry-After then
 * 1), and a retry at exactly n seconds passes.
 */
export async function expectExactRetryAfter(
  algorithm: AlgorithmName,
  serve: (options: { limit: string; algorithm: AlgorithmName; store: MemoryStore }) => Promise<Target>,
): Promise<void> {
  let now = 1_700_000_000_000;
  const store = new MemoryStore({ clock: () => now, sweepIntervalMs: 0 });
  try {
    const target = await serve({ limit: '3/min', algorithm, store });
    const first = await sequence(3, () => request(target, '/'));
    expect(first.map((r) => r.status)).toEqual([200, 200, 200]);
    const denied = await request(target, '/');
    expect(denied.status).toBe(429);
    assertCleanHeaders(denied.headers);
    const wait = Number(denied.headers['retry-after']);
    expect(Number.isInteger(wait)).toBe(true);
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(120);
    const deniedAt = now;
    now = deniedAt + (wait - 1) * 1000;
    const early = await request(target, '/');
    expect([early.status, early.headers['retry-after']]).toEqual([429, '1']);
    now = deniedAt + wait * 1000;
    const onTime = await request(target, '/');
    expect(onTime.status).toBe(200);
    expect(onTime.headers['retry-after']).toBeUndefined();
  } finally {
    await store.close();
  }
}

/** The answer to a request whose store is down and whose limiter fails closed. */
export function expectStoreDown503(reply: Reply): void {
  expect(reply.status).toBe(503);
  expect(Number(reply.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  expect(reply.headers.ratelimit).toBeUndefined();
  expect(reply.headers['ratelimit-policy']).toBeUndefined();
  expect(reply.headers['content-type']).toBe('application/problem+json');
  expect(JSON.parse(reply.body).status).toBe(503);
  expect(reply.body).not.toMatch(/\bat .*:\d+:\d+|ECONNREFUSED|Error/);
}

/** Options an event test gives an adapter (the adapter's test adds its own onLimit, timeouts, ...). */
export interface EventOptions {
  limit: string;
  name: string;
  store?: Store;
  onDegraded?: LimiterHooks['onDegraded'];
  events: LimiterHooks;
}

/**
 * `serve` limits GET / with `options` and an adapter onLimit that pushes its Decision to `answered` and
 * answers 429. The second request is limited: events.onLimit fires exactly once, before the answer,
 * with the key and the very Decision the adapter's onLimit got, whose wait is the Retry-After sent.
 */
export async function expectLimitEvent(
  name: string,
  serve: (options: EventOptions, answered: Decision[]) => Promise<Target>,
): Promise<void> {
  const limits: LimitEvent[] = [];
  const answered: Decision[] = [];
  /** How many answers the adapter's onLimit had given when each event fired (a hook's throw is swallowed). */
  const answeredBefore: number[] = [];
  const onLimit = (event: LimitEvent) => {
    answeredBefore.push(answered.length);
    limits.push(event);
  };
  const target = await serve({ limit: '1/min', name, events: { onLimit } }, answered);
  expect((await request(target, '/')).status).toBe(200);
  expect(limits).toEqual([]);
  const denied = await request(target, '/');
  expect(denied.status).toBe(429);
  expect(limits).toHaveLength(1);
  const [{ key, decision }] = limits;
  expect(key).toBe('127.0.0.1');
  expect(decision).toMatchObject({ allowed: false, remaining: 0, limit: 1, policy: name, degraded: false });
  expect(answered).toHaveLength(1);
  expect(answered[0]).toBe(decision);
  expect(answeredBefore).toEqual([0]);
  expect(denied.headers['retry-after']).toBe(String(Math.ceil(decision.retryAfterMs / 1000)));
  expect(remaining(denied)).toEqual([0]);
}

/**
 * `serve` limits GET / with `options` on a real Redis store nothing listens for: the request gets the
 * fail-closed 503, events.onStoreError fires once for it, the top-level onDegraded once ('closed'), and
 * events.onLimit not at all (a failed store is not a limit).
 */
export async function expectStoreDownEvents(
  name: string,
  serve: (options: EventOptions) => Promise<Target>,
): Promise<void> {
  const store = new RedisStore({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 100, timeoutMs: 100 });
  const storeErrors: StoreErrorEvent[] = [];
  const degraded: DegradedEvent[] = [];
  const limits: LimitEvent[] = [];
  try {
    const target = await serve({
      limit: '5/min',
      name,
      store,
      onDegraded: (event) => degraded.push(event),
      events: { onStoreError: (event) => storeErrors.push(event), onLimit: (event) => limits.push(event) },
    });
    expectStoreDown503(await request(target, '/'));
  } finally {
    await store.close();
  }
  expect(storeErrors.map(({ store, kind, operation, key }) => ({ store, kind, operation, key }))).toEqual([
    { store: 'primary', kind: 'redis', operation: 'consume', key: '127.0.0.1' },
  ]);
  expect(degraded.map((event) => event.mode)).toEqual(['closed']);
  expect(limits).toEqual([]);
}

/** A store whose every call fails, with a message that must never reach a response. */
export function failingStore(): Store {
  const down = () => Promise.reject(new Error('backend down at /secret/path.js:1:2'));
  return {
    kind: 'failing',
    consume: down,
    peek: down,
    reset: down,
    clear: down,
    entries: () => ({ [Symbol.asyncIterator]: () => ({ next: down }) }),
    health: () => Promise.resolve({ ok: false, latencyMs: 0 }),
    close: () => Promise.resolve(),
  };
}
