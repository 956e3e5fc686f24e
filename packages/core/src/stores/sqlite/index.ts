/**
 * SQLite store (better-sqlite3): persistent limits for the processes of one machine, no server.
 *
 * Exactness: every check runs the same `evaluate()` as the memory store (read the states, step,
 * write only if admitted) inside a `BEGIN IMMEDIATE` transaction, which holds the database's one
 * write lock from the first read to the commit, so checks from any number of processes serialise
 * (write-transaction.ts; the file's WAL journal and its checkpoints: wal.ts).
 *
 * Speed: a transaction costs far more than the work in it, so every call that arrives within one
 * turn of the event loop joins one group, run in arrival order in one transaction (group commit),
 * and each caller's promise settles after the commit (when a group is ready: group-commit.ts).
 * Each check in the group is still all-or-nothing, and sees the writes of the checks before it.
 * Reading a row by key costs twice what writing it back does, so rows this connection knows are
 * kept, and read again by rowid only after another connection wrote the file (row-cache.ts). A
 * check alone on a cached row skips the transaction statements: one UPDATE that writes only if the
 * row is as cached (consumeAlone).
 *
 * Bounded: every row carries expires_at; expired rows read as absent and are deleted in the
 * background in small batches (an index on the minute of expiry finds them).
 */
import { assertKnownOptions, errorMessage, FloodgateError, show } from '../../errors.js';
import { evaluate, peekPolicy } from '../../evaluate.js';
import type {
  AlgorithmState,
  Clock,
  Policy,
  PolicyDecision,
  Store,
  StoreEntry,
  StoreHealth,
} from '../../types.js';
import { invalidUri, numberParam, rejectUnknownParams, splitUri, withPrefix } from '../../uri.js';
import { decodeHexState, StateEncoder } from './codec.js';
import { type Database, loadDriver, openDatabase, openFailed } from './driver.js';
import { type CommitOutcome, GroupCommit } from './group-commit.js';
import { type CachedRow, cacheable, RowCache } from './row-cache.js';
import { sweepAfter } from './schema.js';
import { ENTRIES_PAGE, type EntryStatements, prepareEntryStatements } from './statements.js';
import { Sweeper } from './sweep.js';
import { CHECKPOINT_INTERVAL_MS, checkpoint, configure, type SqliteSynchronous } from './wal.js';
import { isBusy, WriteTransactions, withoutStack } from './write-transaction.js';

export type { SqliteSynchronous };

export interface SqliteStoreOptions {
  /** Database file (created if missing), or ':memory:'. Give this or `database`. */
  path?: string;
  /**
   * An open better-sqlite3 Database to keep the tables in (they are named floodgate_*). The store
   * sets WAL mode and the busy timeout on it and does not close it.
   */
  database?: Database;
  /** Time source in ms since the epoch; processes sharing a file must share it. @default Date.now */
  clock?: Clock;
  /** How long a check waits for another process's write lock before failing, in ms. @default 5000 */
  busyTimeoutMs?: number;
  /** How often expired rows are deleted, in ms (0 turns the background sweep off). @default 10000 */
  sweepIntervalMs?: number;
  /**
   * PRAGMA synchronous. 'normal' (default for a path) can lose the last committed groups on a power
   * loss or OS crash, never consistency; 'full' loses nothing but syncs on every commit. With
   * `database` it is only set when given.
   */
  synchronous?: SqliteSynchronous;
  /**
   * Rows kept in process memory so that a check on a key seen before skips reading it (a cached row
   * is dropped as soon as another connection writes the file; see row-cache.ts). About 200 bytes
   * per row; 0 turns it off. Files the store opens only: a `database` handed in is read every time.
   * @default 100_000
   */
  rowCacheSize?: number;
}

const OPTION_NAMES = [
  'path',
  'database',
  'clock',
  'busyTimeoutMs',
  'sweepIntervalMs',
  'synchronous',
  'rowCacheSize',
];
const URI_PARAMS = ['prefix', 'busyTimeoutMs', 'sweepIntervalMs', 'synchronous', 'rowCacheSize'];
const SYNCHRONOUS: readonly SqliteSynchronous[] = ['off', 'normal', 'full', 'extra'];
const DEFAULT_BUSY_TIMEOUT_MS = 5000;
const DEFAULT_SWEEP_INTERVAL_MS = 10_000;
const DEFAULT_ROW_CACHE_SIZE = 100_000;

interface Pending {
  readonly run: () => unknown;
  /**
   * The call made alone, without a transaction (see consumeAlone); undefined when it cannot be, in
   * which case `run` goes in a transaction as usual.
   */
  readonly alone?: () => unknown;
  readonly resolve: (value: never) => void;
  readonly reject: (error: unknown) => void;
}

/** A row's columns as the check statements read them. */
type StoredRow = [hexState: string, expiresAt: number, sweepAfter: number];

export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  /** Set from a URI's `?prefix=` (see withPrefix). */
  declare readonly defaults?: { readonly prefix?: string };
  /** The database file's path (':memory:' for an in-memory database). */
  readonly path: string;

  private readonly db: Database;
  private readonly ownsDatabase: boolean;
  private readonly clock: Clock;
  private readonly busyTimeoutMs: number;
  /** The statements on the entries, prepared once (statements.ts). */
  private readonly sql: EntryStatements;
  /** Rows this connection knows (undefined: off, or a database handed in that its owner also writes). */
  private readonly rows: RowCache | undefined;
  /** The state a statement writes, and the one consumeAlone expects to find (codec.ts). */
  private readonly encoder = new StateEncoder();
  private readonly expectedEncoder = new StateEncoder();
  /** Groups' write transactions, and waiting for another process's write lock (write-transaction.ts). */
  private readonly transactions: WriteTransactions;
  /** Calls waiting to be committed, and when they are (group-commit.ts). */
  private readonly groups = new GroupCommit<Pending>((group, busySince) =>
    this.commitGroup(group, busySince),
  );
  /** Deletes expired rows (sweep.ts). */
  private readonly sweeper: Sweeper;
  private readonly checkpointTimer: NodeJS.Timeout | undefined;
  /** Something was committed since the last timed checkpoint. */
  private written = false;
  private closed = false;
  /** close() under way or done. */
  private closing: Promise<void> | undefined;

  /** Build a store from `sqlite:///relative.db`, `sqlite:////absolute.db` or `sqlite:///:memory:`. */
  static fromUri(uri: string): SqliteStore {
    const { rest, query } = splitUri(uri);
    if (!rest.startsWith('/') || rest.length < 2) {
      throw invalidUri(uri, 'a SQLite URI has three slashes before the path, like "sqlite:///limits.db"');
    }
    let path: string;
    try {
      path = decodeURIComponent(rest.slice(1));
    } catch {
      throw invalidUri(uri, 'its path has a malformed %-escape');
    }
    const { prefix, busyTimeoutMs, sweepIntervalMs, synchronous, rowCacheSize, ...unknown } = query;
    rejectUnknownParams(uri, unknown, URI_PARAMS);
    const options: SqliteStoreOptions = { path };
    if (busyTimeoutMs !== undefined) options.busyTimeoutMs = numberParam(uri, 'busyTimeoutMs', busyTimeoutMs);
    if (sweepIntervalMs !== undefined) {
      options.sweepIntervalMs = numberParam(uri, 'sweepIntervalMs', sweepIntervalMs);
    }
    if (rowCacheSize !== undefined) options.rowCacheSize = numberParam(uri, 'rowCacheSize', rowCacheSize);
    if (synchronous !== undefined) options.synchronous = synchronous.toLowerCase() as SqliteSynchronous;
    const store = new SqliteStore(options);
    return prefix === undefined ? store : withPrefix(store, prefix);
  }

  constructor(options: SqliteStoreOptions) {
    if (options === null || typeof options !== 'object') {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `SqliteStore needs options, like new SqliteStore({ path: "limits.db" })`,
      );
    }
    assertKnownOptions(options, OPTION_NAMES, 'SqliteStore');
    const { path, database, clock, synchronous } = options;
    if ((path === undefined) === (database === undefined)) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `SqliteStore needs exactly one of path or database, like new SqliteStore({ path: "limits.db" })`,
      );
    }
    if (path !== undefined && (typeof path !== 'string' || path === '')) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `path ${show(path)} must be a file name, like "limits.db", or ":memory:"`,
      );
    }
    if (database !== undefined && typeof (database as Partial<Database>)?.prepare !== 'function') {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `database must be a better-sqlite3 Database, like new Database("limits.db")`,
      );
    }
    if (clock !== undefined && typeof clock !== 'function') {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `clock must be a function returning ms, like Date.now`,
      );
    }
    if (synchronous !== undefined && !SYNCHRONOUS.includes(synchronous)) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `synchronous ${show(synchronous)} must be one of ${SYNCHRONOUS.join(', ')}, like "normal"`,
      );
    }
    this.busyTimeoutMs = wholeMs(options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS, 'busyTimeoutMs', 5000);
    const sweepIntervalMs = wholeMs(
      options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS,
      'sweepIntervalMs',
      10_000,
    );
    this.clock = clock ?? Date.now;
    const rowCacheSize = wholeNumber(options.rowCacheSize ?? DEFAULT_ROW_CACHE_SIZE, 'rowCacheSize', 100_000);
    this.rows = database === undefined && rowCacheSize > 0 ? new RowCache(rowCacheSize) : undefined;

    if (database !== undefined) {
      loadDriver(); // the same clear error as for a path if the package is gone
      this.db = database;
      this.ownsDatabase = false;
      this.path = database.name;
    } else {
      this.path = path as string;
      this.db = openDatabase(this.path, this.busyTimeoutMs);
      this.ownsDatabase = true;
    }
    try {
      configure(this.db, {
        path: this.path,
        synchronous: synchronous ?? (this.ownsDatabase ? 'normal' : undefined),
        ownsDatabase: this.ownsDatabase,
        busyTimeoutMs: this.busyTimeoutMs,
      });
      const db = this.db;
      this.sql = prepareEntryStatements(db);
      this.transactions = new WriteTransactions(db, this.busyTimeoutMs);
      if (this.ownsDatabase) this.transactions.waitOwnWay();
      this.sweeper = new Sweeper(db, this.transactions, this.rows, this.clock, () => {
        this.written = true;
      });
    } catch (error) {
      if (this.ownsDatabase) this.db.close();
      throw error instanceof FloodgateError ? error : openFailed(this.path, error);
    }
    if (sweepIntervalMs > 0) this.sweeper.start(sweepIntervalMs);
    if (this.ownsDatabase && !this.db.memory) {
      this.checkpointTimer = setInterval(() => this.checkpointIfWritten(), CHECKPOINT_INTERVAL_MS);
      this.checkpointTimer.unref();
    }
  }

  consume(key: string, policies: readonly Policy[], cost: number): Promise<readonly PolicyDecision[]> {
    // Only one policy on a cached file can go alone (consumeAlone): no closure for it otherwise.
    const alone =
      policies.length === 1 && this.rows !== undefined
        ? () => this.consumeAlone(key, policies, cost)
        : undefined;
    return this.enqueue(key, () => this.consumeNow(key, policies, cost), alone);
  }

  peek(key: string, policies: readonly Policy[]): Promise<readonly PolicyDecision[]> {
    return this.enqueue(key, () => {
      const now = this.clock();
      return policies.map((policy) => peekPolicy(policy, this.read(policy.bucket, key, now), now));
    });
  }

  reset(key: string, buckets: readonly string[]): Promise<void> {
    return this.enqueue(key, () => {
      for (const bucket of buckets) {
        this.sql.remove.run(bucket, key);
        this.rows?.delete(bucket, key);
      }
    });
  }

  clear(prefix: string): Promise<number> {
    return this.enqueue(prefix, () => {
      this.rows?.clear();
      return this.sql.removePrefix.run({ prefix }).changes;
    });
  }

  async *entries(prefix: string): AsyncIterable<StoreEntry> {
    let page = this.sql.firstPage;
    let bucket = prefix;
    let key = '';
    for (;;) {
      this.assertOpen();
      let rows: [string, string, string, number][];
      try {
        rows = page.all(bucket, key) as typeof rows;
      } catch (error) {
        throw storeFailed(this.path, 'entries', error);
      }
      page = this.sql.nextPage;
      const now = this.clock();
      const wallNow = Date.now();
      for (const row of rows) {
        if (!row[0].startsWith(prefix)) return;
        if (row[3] > now) {
          yield {
            bucket: row[0],
            key: row[1],
            state: decodeHexState(row[2]),
            expiresAt: wallNow + (row[3] - now),
          };
        }
      }
      if (rows.length < ENTRIES_PAGE) return;
      [bucket, key] = rows[rows.length - 1];
    }
  }

  async health(): Promise<StoreHealth> {
    if (this.closed) return { ok: false, latencyMs: 0, detail: 'sqlite: closed' };
    const started = performance.now();
    try {
      this.sql.probe.get();
      const journal = this.db.pragma('journal_mode', { simple: true });
      const sync = ['off', 'normal', 'full', 'extra'][
        Number(this.db.pragma('synchronous', { simple: true }))
      ];
      const sweep = this.sweeper.lastError ? `; last sweep failed: ${this.sweeper.lastError}` : '';
      const since = this.groups.waitingSince;
      const waiting =
        since === 0
          ? ''
          : `; ${plural(this.groups.queued, 'call')} waiting ${Math.round(started - since)} ms for the write lock, which another connection holds`;
      return {
        ok: true,
        latencyMs: performance.now() - started,
        detail: `sqlite ${this.path} (journal_mode=${journal}, synchronous=${sync})${sweep}${waiting}`,
      };
    } catch (error) {
      return {
        ok: false,
        latencyMs: performance.now() - started,
        detail: `sqlite ${this.path}: ${errorMessage(error)}`,
      };
    }
  }

  /**
   * Refuse new calls and stop the sweep, settle every queued call (a write lock another connection
   * holds is waited for between turns of the event loop, up to busyTimeoutMs, as by any group), then
   * close the database if this store opened it.
   */
  close(): Promise<void> {
    if (this.closing === undefined) {
      this.closed = true;
      this.sweeper.stop();
      if (this.checkpointTimer) clearInterval(this.checkpointTimer);
      this.closing = this.groups.drain().then(() => {
        if (this.ownsDatabase) this.db.close();
      });
    }
    return this.closing;
  }

  /**
   * Delete every expired row now, in batches (one transaction each), and return how many. The
   * background sweep does the same but yields to requests between batches (sweep.ts).
   */
  sweep(): number {
    this.assertOpen();
    return this.sweeper.sweepAll();
  }

  /** Expired rows deleted by the sweep since the store was created. */
  get swept(): number {
    return this.sweeper.swept;
  }

  /** The timed checkpoint (wal.ts), when something was committed since the last; a busy file waits for the next tick. */
  private checkpointIfWritten(): void {
    if (!this.written || this.closed) return;
    const { busyTimeoutMs, busyTimeoutSetting } = this.transactions;
    this.written = !checkpoint(this.db, busyTimeoutMs, busyTimeoutSetting);
  }

  private enqueue<T>(key: string, run: () => T, alone?: () => T | undefined): Promise<T> {
    if (this.closed) {
      return Promise.reject(
        new FloodgateError(
          'FLOODGATE_CLOSED',
          `this SqliteStore (${this.path}) was closed; create a new one`,
        ),
      );
    }
    if (typeof key !== 'string') {
      return Promise.reject(
        new FloodgateError('FLOODGATE_INVALID_KEY', `key ${show(key)} must be a string, like "user:42"`),
      );
    }
    return new Promise<T>((resolve, reject) => {
      this.groups.add({ run, alone, resolve: resolve as (value: never) => void, reject });
    });
  }

  /**
   * One group, in one BEGIN IMMEDIATE transaction (or a check made alone, see consumeAlone), then
   * every call in it settled: all committed, or all rolled back and rejected. Or, while another
   * connection holds the write lock, nothing run ('waiting': GroupCommit tries again later), or all
   * rejected once it has held it for busyTimeoutMs since `busySince` ('timed-out').
   */
  private commitGroup(group: Pending[], busySince: number): CommitOutcome {
    if (group.length === 1 && group[0].alone !== undefined) {
      let result: unknown;
      try {
        result = group[0].alone();
      } catch {
        result = undefined; // nothing was written: the transaction below decides, and reports a failure
      }
      if (result !== undefined) {
        this.written = true;
        group[0].resolve(result as never);
        return 'settled';
      }
    }
    const results: unknown[] = new Array(group.length);
    const body = () => {
      this.rows?.validate(this.sql.dataVersion.get());
      for (let i = 0; i < group.length; i++) results[i] = group[i].run();
    };
    try {
      if (!this.transactions.tryRun(body, busySince)) return 'waiting';
    } catch (error) {
      // Rows cached by the group's checks were never committed.
      this.rows?.clear();
      // The transaction rolled back: none of the group's checks happened, and each caller hears so.
      const failure = storeFailed(this.path, 'check', error);
      for (const call of group) call.reject(failure);
      return isBusy(error) ? 'timed-out' : 'settled';
    }
    this.written = true;
    for (let i = 0; i < group.length; i++) group[i].resolve(results[i] as never);
    return 'settled';
  }

  private consumeNow(key: string, policies: readonly Policy[], cost: number): PolicyDecision[] {
    const now = this.clock();
    const n = policies.length;
    const rows: (CachedRow | undefined)[] = new Array(n);
    const states: (AlgorithmState | undefined)[] = new Array(n);
    for (let i = 0; i < n; i++) {
      rows[i] = this.row(policies[i].bucket, key);
      states[i] = live(rows[i], now);
    }
    const result = evaluate(policies, states, now, cost);
    // An admission writes every policy; a denial writes only states the clock went back past
    // (re-dated to now, nothing consumed), so a wall-clock step back cannot block a key for its length.
    for (let i = 0; i < n; i++) {
      const step = result.steps[i];
      if (result.allowed || step.rewound) {
        // The write lock is held since the reads, so a row read here is still there to update.
        const state = this.encoder.encode(step.state);
        const expiresAt = now + step.ttlMs;
        const minute = sweepAfter(expiresAt);
        const row = rows[i];
        if (row === undefined) {
          const bucket = policies[i].bucket;
          const id = Number(this.sql.insert.run(bucket, key, state, expiresAt, minute).lastInsertRowid);
          const epoch = this.rows?.epoch ?? 0;
          this.rows?.set(bucket, key, { id, state: step.state, expiresAt, sweepAfter: minute, epoch });
          continue;
        }
        if (row.sweepAfter === minute) this.sql.update.run(state, expiresAt, row.id);
        else this.sql.updateAndMove.run(state, expiresAt, minute, row.id);
        // The cached row is updated in place (no Map write per check), or let go if it grew too long.
        row.state = step.state;
        row.expiresAt = expiresAt;
        row.sweepAfter = minute;
        if (!cacheable(step.state)) this.rows?.delete(policies[i].bucket, key);
      }
    }
    return result.decisions;
  }

  /**
   * A check that arrives alone, as every check does from a caller that awaits each before the next,
   * on a row this connection has cached: decided from the cached row and written by one UPDATE that
   * matches the row only if it still holds exactly the cached state, expiry, bucket and key. That
   * statement is its own write transaction, as atomic as BEGIN IMMEDIATE ... COMMIT around a read and
   * a write: if it changed the row, the row was as cached when it was written, so the decision is the
   * one a read inside the transaction would have given. It spares the BEGIN, the data_version read
   * and the COMMIT statements, ~2 µs of a ~30 µs lone check here. Offered by consume() for one
   * policy on a store with a row cache only. Undefined, with nothing written, whenever the usual
   * transaction must decide instead: no cached row, a denial (made from a cached row that may be
   * stale, so decided again from the file), a row whose sweep minute moves, a row changed by
   * another connection, or a busy file.
   */
  private consumeAlone(
    key: string,
    policies: readonly Policy[],
    cost: number,
  ): readonly PolicyDecision[] | undefined {
    const row = this.rows?.get(policies[0].bucket, key);
    if (row === undefined) return undefined;
    const now = this.clock();
    const result = evaluate(policies, [live(row, now)], now, cost);
    const step = result.steps[0];
    const expiresAt = now + step.ttlMs;
    const moves = sweepAfter(expiresAt) !== row.sweepAfter;
    if (!result.allowed || moves || !cacheable(step.state)) return undefined;
    const changes = withoutStack(
      () =>
        this.sql.updateIfUnchanged.run(
          this.encoder.encode(step.state),
          expiresAt,
          row.id,
          this.expectedEncoder.encode(row.state),
          row.expiresAt,
          policies[0].bucket,
          key,
        ).changes,
    );
    if (changes !== 1) return undefined;
    row.state = step.state;
    row.expiresAt = expiresAt;
    return result.decisions;
  }

  /** The live state of (bucket, key) as of `now`; an expired row reads as absent. */
  private read(bucket: string, key: string, now: number): AlgorithmState | undefined {
    return live(this.row(bucket, key), now);
  }

  /**
   * The row of (bucket, key), expired or not: from the cache, read again by rowid if another
   * connection committed since it was cached (row-cache.ts), or else read by key.
   */
  private row(bucket: string, key: string): CachedRow | undefined {
    const rows = this.rows;
    const cached = rows?.get(bucket, key);
    if (cached !== undefined && rows !== undefined) {
      if (cached.epoch === rows.epoch) return cached;
      const again = this.sql.selectById.get(cached.id, bucket, key) as StoredRow | undefined;
      if (again !== undefined) {
        cached.state = decodeHexState(again[0]);
        cached.expiresAt = again[1];
        cached.sweepAfter = again[2];
        cached.epoch = rows.epoch;
        if (!cacheable(cached.state)) rows.delete(bucket, key);
        return cached;
      }
      rows.delete(bucket, key); // gone, or its rowid now another key's
    }
    const found = this.sql.select.get(bucket, key) as [id: number, ...StoredRow] | undefined;
    if (found === undefined) return undefined;
    const row: CachedRow = {
      id: found[0],
      state: decodeHexState(found[1]),
      expiresAt: found[2],
      sweepAfter: found[3],
      epoch: rows?.epoch ?? 0,
    };
    rows?.set(bucket, key, row);
    return row;
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new FloodgateError(
        'FLOODGATE_CLOSED',
        `this SqliteStore (${this.path}) was closed; create a new one`,
      );
    }
  }
}

function live(row: CachedRow | undefined, now: number): AlgorithmState | undefined {
  return row === undefined || row.expiresAt <= now ? undefined : row.state;
}

function wholeMs(value: unknown, name: string, example: number): number {
  return wholeNumber(value, name, example, 2_147_483_647, ' of ms');
}

function wholeNumber(value: unknown, name: string, example: number, max = 16_000_000, unit = ''): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new FloodgateError(
      'FLOODGATE_INVALID_OPTION',
      `${name} ${show(value)} must be a whole number${unit} from 0 to ${max}, like ${example}`,
    );
  }
  return value;
}

function storeFailed(path: string, what: string, error: unknown): FloodgateError {
  if (error instanceof FloodgateError) return error;
  const code = (error as { code?: string }).code;
  const why = isBusy(error)
    ? 'the database stayed locked by another connection for longer than busyTimeoutMs'
    : errorMessage(error);
  return new FloodgateError(
    'FLOODGATE_STORE_FAILED',
    `SQLite ${what} on ${JSON.stringify(path)} failed: ${why}${code ? ` (${code})` : ''}`,
    { cause: error },
  );
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
