/**
 * Redis store (standalone, Sentinel, Cluster) on ioredis. Every check is decided inside Redis by one
 * Lua script that mirrors the TypeScript algorithms, all of a route's policies at once (admit only if
 * all admit). Checks that arrive in the same event-loop turn are coalesced into one script call per
 * Cluster slot, because the client's per-command cost, not Redis, is what limits throughput.
 */
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { assertKnownOptions, FloodgateError, show } from '../../errors.js';
import { microtask } from '../../microtask.js';
import { DeadlineWatch } from '../../resilience/deadline.js';
import type { Clock, Policy, PolicyDecision, Store, StoreEntry, StoreHealth } from '../../types.js';
import { invalidUri, redact, splitUri } from '../../uri.js';
import { answerBatch, BatchEncoder, type Check } from './batch.js';
import { createClient, loadIoredis, type RedisClient, warnIfUnsafe } from './driver.js';
import { closedError, isRedirectionLoop, storeError } from './failures.js';
import { clientPart, parseRedisKey, redisKey, scanPattern, slotOf } from './keys.js';
import { floodgateScript } from './lua.js';
import { ScriptCall } from './script-call.js';
import { parseRedisUri } from './uri.js';

export interface RedisStoreOptions {
  /** An ioredis `Redis` or `Cluster` you created; the store never closes it. */
  client?: Redis | Cluster;
  /** A Redis URI (redis://, rediss://, redis+unix://, redis+sentinel://, redis+cluster://); the store creates and closes the client. */
  url?: string;
  /**
   * Time source in ms since the epoch. @default Redis `TIME`, one clock for every app server.
   * With a clock of your own, keys also live at least 60 s of real time, so a test clock that moves
   * slower than real time does not see them vanish early.
   */
  clock?: Clock;
  /** Prefix the Limiter uses unless it is given its own (like a URI's ?prefix=). */
  prefix?: string;
  /**
   * How long the store waits for any command it sends (on its own client or one given to it), in
   * ms; then the call fails with FLOODGATE_STORE_TIMEOUT. @default 500
   */
  timeoutMs?: number;
  /** Connect timeout in ms of a client the store creates; also how long a check waits for the first connection. @default 1000 */
  connectTimeoutMs?: number;
  /** Most checks coalesced into one script call (1 turns batching off). @default 64 */
  maxBatch?: number;
  /** Extra ioredis options for a client the store creates, applied over the store's safe defaults. */
  redisOptions?: RedisOptions;
}

const OPTION_NAMES = [
  'client',
  'url',
  'clock',
  'prefix',
  'timeoutMs',
  'connectTimeoutMs',
  'maxBatch',
  'redisOptions',
] as const;

const DEFAULT_TIMEOUT_MS = 500;
const DEFAULT_CONNECT_TIMEOUT_MS = 1000;
const DEFAULT_MAX_BATCH = 64;
/** Keys (checks x policies) per script call, so no call runs long whatever the policies. */
const MAX_BATCH_KEYS = 512;
/**
 * Script calls in flight at once. Past this, checks wait for an answer to come back (a bounded wait:
 * the Limiter's deadline), and past MAX_WAITING they fail at once: Redis is not keeping up.
 */
const MAX_IN_FLIGHT = 64;
const MAX_WAITING = 16_384;
/**
 * When nothing is in flight, a flush of more checks than this is split in two at least, so Redis
 * runs one half while the client reads the other's answer and sends the next: with one call in
 * flight at a time, client and server would take turns instead of working at the same time.
 */
const SPLIT_ABOVE = 8;
/** Real-time floor of a key's TTL when the store is driven by a caller's clock. */
const CLOCK_TTL_FLOOR_MS = 60_000;
const SCAN_COUNT = 1000;
/** A Cluster call that ioredis gave up on after redirections (a slot moving) is sent again this often, this long apart. */
const REDIRECT_RETRIES = 5;
const REDIRECT_RETRY_MS = 100;

/** The subset of the ioredis command API the store uses (the same on Redis and Cluster). */
interface Commands {
  status: string;
  options: { enableOfflineQueue?: boolean };
  /** sha (or function name), numkeys, ...keys, ...args: spread, as ioredis flattens an array argument again per call. */
  evalsha(...args: string[]): Promise<unknown>;
  fcall(...args: string[]): Promise<unknown>;
  call(command: string, ...args: string[]): Promise<unknown>;
  eval(args: string[]): Promise<unknown>;
  unlink(...keys: string[]): Promise<number>;
  get(key: string): Promise<string | null>;
  pttl(key: string): Promise<number>;
  scan(cursor: string, ...args: (string | number)[]): Promise<[string, string[]]>;
  ping(): Promise<string>;
  quit(): Promise<unknown>;
  disconnect(): void;
  pipeline(commands: (string | number)[][]): { exec(): Promise<[Error | null, unknown][] | null> };
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
  connect(): Promise<void>;
}

export class RedisStore implements Store {
  readonly kind = 'redis';
  readonly defaults?: { readonly prefix?: string };
  /** The ioredis client in use (the one given, or the one the store created). */
  readonly client: RedisClient;
  /**
   * Script calls made and checks sent, for benchmarks and tests of batching; calls sent again after
   * ioredis gave up on a Cluster redirection loop (a slot moving).
   */
  readonly stats = { calls: 0, checks: 0, resent: 0 };

  private readonly commands: Commands;
  private readonly owned: boolean;
  private readonly cluster: boolean;
  private readonly clock: Clock | undefined;
  /** A batch's script arguments (batch.ts). */
  private readonly encoder: BatchEncoder;
  private readonly maxBatch: number;
  private readonly connectTimeoutMs: number;
  private readonly description: string;
  /** The deadline of every command sent (one timer for all, not ioredis's commandTimeout timer per command). */
  private readonly deadlines: DeadlineWatch;
  /** Checks waiting for the next flush, by Cluster slot (0 for a single node). */
  private readonly queues = new Map<number, Check[]>();
  private scheduled = false;
  /** Checks in `queues`, and script calls sent but not answered. */
  private waiting = 0;
  private inFlight = 0;
  /** Set while a client that does not queue offline makes its first connection. */
  private booting: Promise<void> | undefined;
  private readonly onError = (): void => {
    // Errors surface through the commands that fail; without a listener ioredis would log each one.
  };
  private closed = false;
  /** FCALL, EVALSHA or EVAL, and what to do when Redis lost the script (script-call.ts). */
  private readonly scripts: ScriptCall;

  /** `createStore('redis://…')` lands here. */
  static fromUri(uri: string): RedisStore {
    return new RedisStore({ url: uri });
  }

  constructor(options: RedisStoreOptions) {
    if (options === null || typeof options !== 'object') {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        'RedisStore needs options, like new RedisStore({ url: "redis://localhost:6379" }) or new RedisStore({ client })',
      );
    }
    assertKnownOptions(options, OPTION_NAMES, 'RedisStore');
    if ((options.client === undefined) === (options.url === undefined)) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        'RedisStore needs exactly one of { url: "redis://localhost:6379" } or { client: new Redis() }',
      );
    }
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        'clock must be a function returning ms, like () => Date.now()',
      );
    }
    const parsed = options.url === undefined ? undefined : parseUrl(options.url);
    const fromUri = parsed?.store ?? {};
    const timeoutMs = positiveInteger(
      options.timeoutMs ?? fromUri.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      'timeoutMs',
      500,
    );
    this.connectTimeoutMs = positiveInteger(
      options.connectTimeoutMs ?? fromUri.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      'connectTimeoutMs',
      1000,
    );
    this.maxBatch = positiveInteger(
      options.maxBatch ?? fromUri.maxBatch ?? DEFAULT_MAX_BATCH,
      'maxBatch',
      64,
    );
    const prefix = options.prefix ?? fromUri.prefix;
    if (prefix !== undefined) {
      if (typeof prefix !== 'string' || prefix.length > 200) {
        throw new FloodgateError(
          'FLOODGATE_INVALID_OPTION',
          `prefix ${show(prefix)} must be a string, like "app:"`,
        );
      }
      this.defaults = Object.freeze({ prefix });
    }
    this.clock = options.clock;
    this.encoder = new BatchEncoder(options.clock === undefined ? '0' : String(CLOCK_TTL_FLOOR_MS));
    floodgateScript(); // read the scripts now: a broken install fails at construction, not per request

    if (parsed !== undefined) {
      if (
        options.redisOptions !== undefined &&
        (typeof options.redisOptions !== 'object' || options.redisOptions === null)
      ) {
        throw new FloodgateError(
          'FLOODGATE_INVALID_OPTION',
          'redisOptions must be an object of ioredis options, like { tls: {} }',
        );
      }
      this.client = createClient(parsed, { connectTimeoutMs: this.connectTimeoutMs }, options.redisOptions);
      this.owned = true;
      this.description = `redis ${parsed.mode} ${redact(options.url ?? '')}`;
    } else {
      const client = options.client as RedisClient;
      if (
        client === null ||
        typeof client !== 'object' ||
        typeof (client as { evalsha?: unknown }).evalsha !== 'function'
      ) {
        throw new FloodgateError(
          'FLOODGATE_INVALID_OPTION',
          `client ${show(client)} is not an ioredis client; pass new Redis(…) or new Cluster(…) from "ioredis"`,
        );
      }
      if (options.redisOptions !== undefined) {
        throw new FloodgateError(
          'FLOODGATE_INVALID_OPTION',
          'redisOptions applies only with { url }; set them on your own client instead',
        );
      }
      this.client = client;
      this.owned = false;
      this.description = `redis ${client.isCluster ? 'cluster' : 'client'}`;
      warnIfUnsafe(client);
    }
    this.deadlines = new DeadlineWatch(timeoutMs, this.description);
    this.commands = this.client as unknown as Commands;
    this.scripts = new ScriptCall(this.commands, () => this.masters(), this.deadlines);
    this.cluster = this.client.isCluster === true;
    if (this.owned) this.commands.on('error', this.onError);
    this.startBoot();
  }

  consume(key: string, policies: readonly Policy[], cost: number): Promise<readonly PolicyDecision[]> {
    if (!Number.isInteger(cost)) {
      return Promise.reject(
        new FloodgateError('FLOODGATE_INVALID_COST', `cost ${show(cost)} must be a whole number`),
      );
    }
    return this.enqueue(key, policies, String(cost));
  }

  peek(key: string, policies: readonly Policy[]): Promise<readonly PolicyDecision[]> {
    return this.enqueue(key, policies, 'p');
  }

  async reset(key: string, buckets: readonly string[]): Promise<void> {
    this.assertOpen();
    if (buckets.length === 0) return;
    const part = clientPart(key);
    // One client's keys share a slot, so one UNLINK covers them even on a Cluster.
    await this.run(() => this.commands.unlink(...buckets.map((bucket) => redisKey(bucket, part))));
  }

  async clear(prefix: string): Promise<number> {
    this.assertOpen();
    let removed = 0;
    for (const node of this.masters()) {
      for await (const keys of this.scanKeys(node, prefix)) {
        // Keys of different clients live in different slots: on a Cluster node, one UNLINK per key.
        const replies = await this.run(() =>
          this.cluster
            ? node.pipeline(keys.map((key) => ['unlink', key])).exec()
            : node.unlink(...keys).then((n) => [[null, n]] as [null, number][]),
        );
        for (const [error, n] of replies ?? []) if (error === null) removed += Number(n);
      }
    }
    return removed;
  }

  async *entries(prefix: string): AsyncIterable<StoreEntry> {
    this.assertOpen();
    for (const node of this.masters()) {
      for await (const keys of this.scanKeys(node, prefix)) {
        const replies = await this.run(() =>
          node
            .pipeline(
              keys.flatMap((key) => [
                ['getBuffer', key],
                ['pttl', key],
              ]),
            )
            .exec(),
        );
        const wall = Date.now();
        const now = this.clock?.();
        for (let i = 0; i < keys.length; i++) {
          const value = replies?.[2 * i]?.[1];
          const pttl = Number(replies?.[2 * i + 1]?.[1]);
          if (!Buffer.isBuffer(value) || !(pttl > 0)) continue;
          const numbers = decodeState(value);
          if (numbers === undefined) continue;
          const expires = numbers[0];
          // With the caller's clock, the clock's own expiry decides (the real TTL has a floor).
          if (now !== undefined && expires <= now) continue;
          const parsed = parseRedisKey(keys[i]);
          if (parsed === undefined) continue;
          yield {
            bucket: parsed.bucket,
            key: parsed.key,
            state: numbers.slice(1),
            expiresAt: now === undefined ? wall + pttl : wall + (expires - now),
          };
        }
      }
    }
  }

  async health(): Promise<StoreHealth> {
    const started = performance.now();
    if (this.closed) return { ok: false, latencyMs: 0, detail: `${this.description}: closed` };
    try {
      await this.ready();
      await this.run(() => this.commands.ping());
      return { ok: true, latencyMs: performance.now() - started, detail: this.description };
    } catch (error) {
      return {
        ok: false,
        latencyMs: performance.now() - started,
        detail: `${this.description}: ${(error as Error).message}`,
      };
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush(); // checks already queued still get their answers
    this.closed = true;
    if (!this.owned) return;
    const ended = new Promise<void>((resolve) => {
      if (this.commands.status === 'end') return resolve();
      const timer = setTimeout(resolve, 1000);
      this.commands.on('end', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (this.commands.status === 'ready') {
      // QUIT lets the replies in flight come back; bounded like the wait below (a reply may never come).
      this.commands.quit().catch(() => this.commands.disconnect());
    } else {
      // Not connected (connecting, a handshake the server refused, reconnecting): nothing to wait for.
      this.commands.disconnect();
    }
    await ended; // resolve once the connection is really gone, so a process can exit right after
    if (this.commands.status !== 'end') this.commands.disconnect();
    // The no-op error listener stays: a connection the server never answered can still fail its
    // ready check after this, and ioredis would print that error to the console with no listener.
  }

  private enqueue(key: string, policies: readonly Policy[], op: string): Promise<PolicyDecision[]> {
    if (this.closed) return Promise.reject(closedError());
    if (policies.length === 0) return Promise.resolve([]);
    let now = '';
    if (this.clock !== undefined) {
      const time = this.clock();
      if (!Number.isFinite(time)) {
        return Promise.reject(
          new FloodgateError(
            'FLOODGATE_INVALID_OPTION',
            `the RedisStore clock returned ${show(time)}; it must return ms since the epoch`,
          ),
        );
      }
      now = String(time);
    }
    if (this.waiting >= MAX_WAITING) {
      return Promise.reject(
        new FloodgateError(
          'FLOODGATE_STORE_UNAVAILABLE',
          `Redis is not keeping up (${this.description}): ${MAX_WAITING} checks are already waiting`,
        ),
      );
    }
    const part = clientPart(key);
    const keys = new Array<string>(policies.length);
    for (let i = 0; i < policies.length; i++) keys[i] = redisKey(policies[i].bucket, part);
    const slot = this.cluster ? slotOf(part) : 0;
    return new Promise<PolicyDecision[]>((resolve, reject) => {
      let queue = this.queues.get(slot);
      if (queue === undefined) {
        queue = [];
        this.queues.set(slot, queue);
      }
      queue.push({ keys, policies, op, now, resolve, reject });
      this.waiting++;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // Idle (nothing in flight): send at the end of this task, so a lone check does not wait for the
    // loop turn, while checks made together (Promise.all) still share the call. Busy: setImmediate,
    // so the checks from every socket read in this loop turn join the next batch.
    if (this.inFlight === 0) microtask(this.flushNow);
    else setImmediate(this.flushNow);
  }

  private readonly flushNow = (): void => this.flush();

  /** Send what is waiting, in batches, as far as the calls in flight allow; the rest waits for answers. */
  private flush(): void {
    this.scheduled = false;
    for (const [slot, queue] of this.queues) {
      const split = this.inFlight === 0 && queue.length > SPLIT_ABOVE;
      const size = Math.min(this.maxBatch, split ? Math.ceil(queue.length / 2) : queue.length);
      let start = 0;
      while (start < queue.length && this.inFlight < MAX_IN_FLIGHT) {
        let end = start;
        let keys = 0;
        while (
          end < queue.length &&
          end - start < size &&
          (end === start || keys + queue[end].keys.length <= MAX_BATCH_KEYS)
        ) {
          keys += queue[end].keys.length;
          end++;
        }
        this.send(start === 0 && end === queue.length ? queue : queue.slice(start, end), keys);
        start = end;
      }
      this.waiting -= start;
      if (start === queue.length) this.queues.delete(slot);
      else queue.splice(0, start);
    }
  }

  /** One script call for a batch (its arguments and reply: batch.ts). */
  private send(batch: Check[], keyCount: number): void {
    const args = this.encoder.encode(batch, keyCount);
    this.stats.calls++;
    this.stats.checks += batch.length;
    this.inFlight++;
    this.call(args, 0).then(
      (reply) => {
        this.settled();
        if (!answerBatch(batch, keyCount, reply)) {
          this.fail(batch, new Error(`unexpected script reply ${show(reply)}`));
        }
      },
      (error: unknown) => {
        this.settled();
        this.fail(batch, error);
      },
    );
  }

  private fail(batch: Check[], error: unknown): void {
    const failure = storeError(error);
    for (const check of batch) check.reject(failure);
  }

  /** A call came back: checks held back by MAX_IN_FLIGHT may go now. */
  private settled(): void {
    this.inFlight--;
    if (this.waiting > 0) this.schedule();
  }

  /**
   * evaluate(), sent again when ioredis gave up on a Cluster redirection loop. While a slot migrates,
   * a check whose keys are split between the two masters gets TRYAGAIN, and ioredis retries that on
   * a random node, which answers MOVED back: 16 redirections pass in well under a second. Every reply
   * was a redirection, so the script ran nowhere and sending it again cannot count a check twice.
   */
  private call(args: string[], attempt: number): Promise<unknown> {
    const sent = this.evaluate(args);
    if (!this.cluster) return sent;
    return sent.catch((error: unknown) => {
      if (attempt >= REDIRECT_RETRIES || this.closed || !isRedirectionLoop(error)) throw error;
      this.stats.resent++;
      return new Promise((resolve) => setTimeout(resolve, REDIRECT_RETRY_MS)).then(() =>
        this.call(args, attempt + 1),
      );
    });
  }

  /**
   * One script call (args: [name], numkeys, keys and arguments) once a command can be sent, under
   * the store's deadline. FCALL, EVALSHA or EVAL, and NOSCRIPT: script-call.ts.
   */
  private evaluate(args: string[]): Promise<unknown> {
    try {
      const booting = this.ready();
      if (booting !== undefined) return booting.then(() => this.evaluate(args));
    } catch (error) {
      return Promise.reject(error);
    }
    let sent: Promise<unknown>;
    try {
      sent = this.scripts.send(args);
    } catch (error) {
      // A client given to the store that throws instead of rejecting: this runs in a flush, where
      // a throw would be an uncaught exception; as a rejection it fails this batch's checks only.
      sent = Promise.reject(error);
    }
    return this.deadlines.watch(sent);
  }

  private startBoot(): void {
    if (this.commands.status === 'ready' || this.commands.options.enableOfflineQueue !== false) return;
    if (this.commands.status === 'wait') this.commands.connect().catch(() => {});
    const client = this.commands;
    this.booting = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => done(new Error(`no connection within ${this.connectTimeoutMs} ms`)),
        this.connectTimeoutMs,
      );
      timer.unref();
      const onReady = () => done();
      const onError = (error: unknown) => done(error instanceof Error ? error : new Error(String(error)));
      const onEnd = () => done(new Error('the connection ended'));
      function done(error?: Error) {
        clearTimeout(timer);
        client.off('ready', onReady);
        client.off('error', onError);
        client.off('end', onEnd);
        if (error) reject(error);
        else resolve();
      }
      client.on('ready', onReady);
      client.on('error', onError);
      client.on('end', onEnd);
    });
    this.booting.then(
      () => {
        this.booting = undefined;
      },
      () => {
        this.booting = undefined;
      },
    );
  }

  /**
   * Resolve when a command can be sent. A client without an offline queue rejects commands until it
   * is connected: the first connection is awaited (bounded by connectTimeoutMs); during a reconnect
   * the check fails at once, so the Limiter's failure policy answers without waiting.
   */
  private ready(): Promise<void> | undefined {
    if (this.closed) throw closedError();
    if (this.commands.status === 'ready' || this.commands.options.enableOfflineQueue !== false)
      return undefined;
    if (this.booting !== undefined) return this.booting;
    throw new FloodgateError(
      'FLOODGATE_STORE_UNAVAILABLE',
      `Redis is not connected (${this.description}, status ${this.commands.status}); the client is reconnecting`,
    );
  }

  private async run<T>(command: () => Promise<T>): Promise<T> {
    try {
      await this.ready();
      return await this.deadlines.watch(command());
    } catch (error) {
      throw storeError(error);
    }
  }

  private masters(): Commands[] {
    if (!this.cluster) return [this.commands];
    return (this.client as Cluster).nodes('master') as unknown as Commands[];
  }

  private async *scanKeys(node: Commands, prefix: string): AsyncGenerator<string[]> {
    const pattern = scanPattern(prefix);
    let cursor = '0';
    do {
      const [next, found] = await this.run(() => node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT));
      cursor = next;
      // Only keys shaped like ours: a shared Redis may hold other keys under the same prefix.
      const ours = found.filter((key) => {
        const parsed = parseRedisKey(key);
        return parsed?.bucket.startsWith(prefix) === true;
      });
      if (ours.length > 0) yield ours;
    } while (cursor !== '0');
  }

  private assertOpen(): void {
    if (this.closed) throw closedError();
  }
}

/**
 * A stored value: a format byte (1 or 2), a 16-bit offset, then little-endian doubles: expiresAt,
 * then the state (see lua/state.lua).
 */
function decodeState(value: Buffer): number[] | undefined {
  const count = (value.length - 3) / 8;
  if (!Number.isInteger(count) || count < 1 || (value[0] !== 1 && value[0] !== 2)) return undefined;
  const numbers = new Array<number>(count);
  for (let i = 0; i < count; i++) numbers[i] = value.readDoubleLE(3 + 8 * i);
  return numbers;
}

function positiveInteger(value: unknown, name: string, example: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 600_000) {
    throw new FloodgateError(
      'FLOODGATE_INVALID_OPTION',
      `${name} ${show(value)} must be a whole number from 1 to 600000, like ${example}`,
    );
  }
  return value;
}

function parseUrl(url: unknown): ReturnType<typeof parseRedisUri> {
  if (typeof url !== 'string') {
    throw new FloodgateError(
      'FLOODGATE_INVALID_URI',
      `url ${show(url)} must be a string, like "redis://localhost:6379/0"`,
    );
  }
  const { scheme } = splitUri(url);
  if (!scheme.startsWith('redis'))
    throw invalidUri(url, `RedisStore takes a Redis URI, not ${show(`${scheme}://`)}`);
  loadIoredis(); // a missing driver is reported before anything else is built
  return parseRedisUri(url);
}
