/**
 * How a group's statements become one write transaction: BEGIN IMMEDIATE ... COMMIT, or a savepoint
 * inside an application's own open transaction, and how a store waits for another process's write
 * lock meanwhile.
 */
import { performance } from 'node:perf_hooks';
import { type Database, sleepSync } from './driver.js';

/**
 * Waiting for another process's write lock on a file the store opened: SQLite's own busy handler
 * sleeps 1, 2, 5, 10, 15... ms between tries, while a group holds the lock for well under a
 * millisecond, so with several processes most of a wait was spent after the lock was free. The store
 * retries itself instead, first after FIRST_BUSY_WAIT_MS, doubling up to MAX_BUSY_WAIT_MS.
 */
const FIRST_BUSY_WAIT_MS = 0.05;
const MAX_BUSY_WAIT_MS = 1;
/**
 * How long `tryRun` waits for the lock in place, blocking the event loop (better-sqlite3 is
 * synchronous), before it hands the wait back to its caller to go on between turns of the loop: long
 * enough for the groups of other processes sharing the file (each holds the lock well under a
 * millisecond) to pass, short enough that a program keeping a transaction open for seconds cannot
 * freeze the server, whose other requests, timers and the Limiter's deadline keep running.
 */
export const BLOCKING_WAIT_MS = 2;
/** Between turns of the event loop, the lock is tried again this often (setTimeout). */
export const DEFERRED_RETRY_MS = MAX_BUSY_WAIT_MS;

export class WriteTransactions {
  private readonly begin;
  private readonly commit;
  private readonly rollback;
  private readonly savepoint;
  private readonly release;
  private readonly rollbackTo;
  /** SQLite's busy handler is off (busy_timeout 0) and `run` retries a busy lock itself. */
  private ownBusyWait = false;

  constructor(
    private readonly db: Database,
    readonly busyTimeoutMs: number,
  ) {
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commit = db.prepare('COMMIT');
    this.rollback = db.prepare('ROLLBACK');
    this.savepoint = db.prepare('SAVEPOINT floodgate_group');
    this.release = db.prepare('RELEASE floodgate_group');
    this.rollbackTo = db.prepare('ROLLBACK TO floodgate_group');
  }

  /**
   * From now on, wait for the lock here rather than in SQLite's busy handler (for a file the store
   * opened: opening and migrating it waited through SQLite's).
   */
  waitOwnWay(): void {
    this.db.pragma('busy_timeout = 0');
    this.ownBusyWait = true;
  }

  /** The busy_timeout this connection runs with: 0 while `run` waits its own way. */
  get busyTimeoutSetting(): number {
    return this.ownBusyWait ? 0 : this.busyTimeoutMs;
  }

  /**
   * Run `body` in a BEGIN IMMEDIATE transaction: committed if it returns, rolled back if it throws.
   * Waiting for the write lock is SQLite's busy handler's job on a database the store was given, this
   * class's on a file it opened (see FIRST_BUSY_WAIT_MS), up to busyTimeoutMs either way, blocking.
   */
  run(body: () => void): void {
    this.transact(body, undefined);
  }

  /**
   * As `run`, but on a file the store opened, waits for the lock here at most BLOCKING_WAIT_MS, and
   * only on a first try: false, with nothing run, while it is still taken, for the caller to try again
   * later. `busySince` is when the caller's first try found it taken (performance.now(); 0 for
   * a first try): once it has been taken for busyTimeoutMs, the SQLITE_BUSY error is thrown instead.
   */
  tryRun(body: () => void, busySince: number): boolean {
    return this.transact(body, busySince);
  }

  private transact(body: () => void, busySince: number | undefined): boolean {
    if (this.db.inTransaction) {
      // Only on a database the store was given, whose application left its own transaction open:
      // the calls join it as a savepoint (and are committed or rolled back with it).
      this.savepoint.run();
      try {
        body();
      } catch (error) {
        this.rollbackTo.run();
        throw error;
      } finally {
        this.release.run();
      }
      return true;
    }
    if (!this.ownBusyWait) this.begin.run();
    else if (!this.retryBusy(this.begin, busySince)) return false;
    try {
      body();
      this.commit.run();
    } catch (error) {
      if (this.db.inTransaction) this.rollback.run();
      throw error;
    }
    return true;
  }

  /**
   * Run `statement` (no parameters), retrying while the file is busy: until busyTimeoutMs after
   * `busySince` (or after the first busy try when it is 0 or undefined), then the error is thrown.
   * With `busySince` given, false once BLOCKING_WAIT_MS have passed here (see tryRun).
   */
  private retryBusy(statement: { run(): unknown }, busySince: number | undefined): boolean {
    let deadline = 0;
    let giveBackAt = Number.POSITIVE_INFINITY;
    let wait = FIRST_BUSY_WAIT_MS;
    for (;;) {
      try {
        withoutStack(() => statement.run());
        return true;
      } catch (error) {
        if (!isBusy(error)) throw error;
        const now = performance.now();
        if (deadline === 0) {
          deadline = (busySince || now) + this.busyTimeoutMs;
          // Only a first try waits here: a group tried again from a timer has had its wait.
          if (busySince !== undefined) giveBackAt = busySince === 0 ? now + BLOCKING_WAIT_MS : now;
        }
        if (now >= deadline) throw error;
        if (now >= giveBackAt) return false;
        sleepSync(Math.min(wait, deadline - now, giveBackAt - now));
        wait = Math.min(wait * 2, MAX_BUSY_WAIT_MS);
      }
    }
  }
}

/**
 * `attempt()`, with no stack trace captured if it throws: with several processes most tries of
 * BEGIN IMMEDIATE find the lock taken, and capturing a stack for each of those errors took ~5% of
 * the CPU of 4 processes sharing a file (profiled). The caller wraps any error it passes on in a
 * FloodgateError, which has its own stack.
 */
export function withoutStack<T>(attempt: () => T): T {
  const depth = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return attempt();
  } finally {
    Error.stackTraceLimit = depth;
  }
}

export function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}
