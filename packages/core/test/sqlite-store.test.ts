/**
 * The SQLite store beyond the conformance suite: URIs and options, bad files at construction,
 * request-time failures, group commit order, the sweep, agreement with the memory store, and the
 * missing-driver error. Real files in a temporary directory throughout.
 */
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { ALGORITHM_NAMES } from '../src/algorithms/index.js';
import { type FloodgateError, isFloodgateError } from '../src/errors.js';
import { Limiter } from '../src/limiter.js';
import { parsePolicies } from '../src/rate.js';
import { MemoryStore } from '../src/stores/memory.js';
import { decodeHexState, StateEncoder } from '../src/stores/sqlite/codec.js';
import { unsafeDriverPair } from '../src/stores/sqlite/driver.js';
import { SqliteStore } from '../src/stores/sqlite/index.js';
import type { RowCache } from '../src/stores/sqlite/row-cache.js';
import { TestClock } from '../src/testing/index.js';
import type { Policy } from '../src/types.js';
import { createStore } from '../src/uri.js';

const dir = mkdtempSync(join(tmpdir(), 'floodgate-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = () => join(dir, `t${++n}.db`);
const hour = (limit: number, prefix: string, algorithm: (typeof ALGORITHM_NAMES)[number] = 'fixed-window') =>
  parsePolicies({ limit, window: '1h' }, { prefix, algorithm });

/** A store on a new file, one check made on key "k", and another connection holding the write lock. */
async function lockHeldAfterOneCheck(busyTimeoutMs: number, policies: readonly Policy[]) {
  const path = file();
  const store = new SqliteStore({ path, busyTimeoutMs, sweepIntervalMs: 0 });
  await store.consume('k', policies, 1);
  const other = new Database(path);
  other.exec('BEGIN IMMEDIATE');
  return { path, store, policies, other };
}

/** Run `count` timers of `ms` one after another; the longest any of them took past its `ms`. */
async function timerStalls(count: number, ms: number): Promise<number> {
  let longest = 0;
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await new Promise((resolve) => setTimeout(resolve, ms));
    longest = Math.max(longest, performance.now() - start - ms);
  }
  return longest;
}

function thrown(fn: () => unknown): FloodgateError {
  try {
    fn();
  } catch (error) {
    if (isFloodgateError(error)) return error;
    throw error;
  }
  throw new Error('expected a FloodgateError');
}

describe('SqliteStore: URIs and options', () => {
  it('sqlite:///relative.db opens relative to the working directory', async () => {
    const cwd = process.cwd();
    const here = join(dir, 'relative');
    mkdirSync(here);
    process.chdir(here);
    try {
      const store = createStore('sqlite:///limits.db') as SqliteStore;
      expect(store.kind).toBe('sqlite');
      expect(store.path).toBe('limits.db');
      await store.consume('k', hour(5, 'r:'), 1);
      await store.close();
      expect(existsSync(join(here, 'limits.db'))).toBe(true);
    } finally {
      process.chdir(cwd);
    }
  });

  it('sqlite:////absolute/path.db, query parameters, and %-escapes', async () => {
    const path = join(dir, 'with space.db');
    const store = createStore(
      `sqlite:///${path.replace(' ', '%20')}?prefix=app:&busyTimeoutMs=1234&sweepIntervalMs=0&synchronous=full`,
    ) as SqliteStore;
    expect(path.startsWith('/')).toBe(true); // so the URI above had four slashes
    expect(store.path).toBe(path);
    expect(store.defaults).toEqual({ prefix: 'app:' });
    const db = new Database(path);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
    const health = await store.health();
    expect(health.ok).toBe(true);
    expect(health.detail).toBe(`sqlite ${path} (journal_mode=wal, synchronous=full)`);
    await store.close();
  });

  it('sqlite:///:memory: is a private in-memory database', async () => {
    const a = createStore('sqlite:///:memory:');
    const b = createStore('sqlite:///:memory:');
    const policies = hour(1, 'm:');
    expect((await a.consume('k', policies, 1))[0].allowed).toBe(true);
    expect((await a.consume('k', policies, 1))[0].allowed).toBe(false);
    expect((await b.consume('k', policies, 1))[0].allowed).toBe(true);
    await a.close();
    await b.close();
  });

  it('a Limiter takes the URI and honours its prefix', async () => {
    const path = file();
    const limiter = new Limiter({ limit: '2/h', store: `sqlite:///${path}?prefix=lim:` });
    expect((await limiter.consume('u')).remaining).toBe(1);
    expect((await limiter.consume('u')).remaining).toBe(0);
    expect((await limiter.consume('u')).allowed).toBe(false);
    const store = new SqliteStore({ path });
    const buckets = [];
    for await (const entry of store.entries('lim:')) buckets.push([entry.bucket, entry.key, entry.state[2]]); // current count
    expect(buckets).toEqual([['lim:2-in-1h:sw', 'u', 2]]);
    await store.close();
    await limiter.close();
  });

  it.each([
    ['sqlite://limits.db', 'three slashes'],
    ['sqlite:///', 'three slashes'],
    ['sqlite:///x.db?busyTimeoutMs=soon', '?busyTimeoutMs=soon is not a number'],
    ['sqlite:///x.db?timeout=5', 'unknown parameter ?timeout='],
    ['sqlite:///x.db?busyTimeoutMs=-1', 'busyTimeoutMs -1 must be a whole number'],
    [
      'sqlite:///x.db?synchronous=sometimes',
      'synchronous "sometimes" must be one of off, normal, full, extra',
    ],
  ])('rejects %s', (uri, why) => {
    const error = thrown(() => createStore(uri));
    expect(['FLOODGATE_INVALID_URI', 'FLOODGATE_INVALID_OPTION']).toContain(error.code);
    expect(error.message).toContain(why);
  });

  it('rejects bad options with what to write instead', () => {
    expect(thrown(() => new SqliteStore({})).message).toContain('exactly one of path or database');
    expect(thrown(() => new SqliteStore({ path: 'a.db', database: new Database(':memory:') })).code).toBe(
      'FLOODGATE_INVALID_OPTION',
    );
    const typo = thrown(() => new SqliteStore({ path: ':memory:', busyTimeout: 5 } as never));
    expect(typo.code).toBe('FLOODGATE_UNKNOWN_OPTION');
    expect(typo.message).toContain('did you mean "busyTimeoutMs"?');
    expect(thrown(() => new SqliteStore({ path: '' })).code).toBe('FLOODGATE_INVALID_OPTION');
    expect(thrown(() => new SqliteStore({ database: {} as never })).message).toContain(
      'better-sqlite3 Database',
    );
  });

  it('on a file it opened: checkpoints every 10,000 WAL pages and waits for locks itself; a given database keeps its settings', async () => {
    const path = file();
    const store = new SqliteStore({ path, sweepIntervalMs: 0 });
    const db = (store as unknown as { db: Database.Database }).db;
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(10_000);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(0); // the store retries a busy lock
    await store.consume('k', hour(5, 'ck:'), 1);
    await store.close();
    const given = new Database(file());
    const other = new SqliteStore({ database: given, sweepIntervalMs: 0, busyTimeoutMs: 700 });
    expect(given.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    expect(given.pragma('busy_timeout', { simple: true })).toBe(700); // SQLite's busy handler waits
    expect((await other.consume('k', hour(5, 'ck:'), 2))[0].remaining).toBe(3);
    await other.close();
    given.close();
  });

  it('the timed checkpoint truncates a WAL that other connections kept from starting over', async () => {
    const path = file();
    const store = new SqliteStore({ path, sweepIntervalMs: 0 });
    const internals = store as unknown as { db: Database.Database; checkpointIfWritten(): void };
    const reader = new Database(path);
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM floodgate_entries').get(); // pins a snapshot
    internals.db.exec('CREATE TABLE pad (x BLOB)');
    const insert = internals.db.prepare('INSERT INTO pad VALUES (randomblob(4000))');
    internals.db.transaction(() => {
      for (let i = 0; i < 10_100; i++) insert.run();
    })();
    reader.exec('COMMIT');
    reader.close();
    await store.consume('k', hour(5, 'wal:'), 1); // checkpointed by now, but no writer has restarted it
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(10_000 * 4096);
    internals.checkpointIfWritten();
    expect(statSync(`${path}-wal`).size).toBe(0);
    // The restart waited through SQLite's busy handler; the store waits its own way again after it.
    expect(internals.db.pragma('busy_timeout', { simple: true })).toBe(0);
    expect((await store.consume('k', hour(5, 'wal:'), 1))[0].remaining).toBe(3);
    await store.close();
  });

  it("on a given database with the application's own transaction open, the calls join it as a savepoint", async () => {
    const db = new Database(file());
    const store = new SqliteStore({ database: db, sweepIntervalMs: 0 });
    const policies = hour(5, 'nested:');
    db.exec('BEGIN');
    expect((await store.consume('k', policies, 2))[0].remaining).toBe(3);
    expect(db.inTransaction).toBe(true);
    db.exec('ROLLBACK'); // the application's rollback takes the check with it
    expect((await store.consume('k', policies, 1))[0].remaining).toBe(4);
    await store.close();
    db.close();
  });

  it('a file it creates gets 2 KB pages; a file with pages, or a database given, keeps its own', async () => {
    const pageSize = (path: string) => {
      const db = new Database(path);
      const size = db.pragma('page_size', { simple: true });
      db.close();
      return size;
    };
    const created = file();
    const store = new SqliteStore({ path: created });
    await store.consume('k', hour(3, 'page:'), 1);
    await store.close();
    expect(pageSize(created)).toBe(2048);

    const existing = file();
    const app = new Database(existing);
    app.exec('CREATE TABLE app (x)');
    app.close();
    const reopened = new SqliteStore({ path: existing });
    expect((await reopened.consume('k', hour(3, 'page:'), 1))[0].remaining).toBe(2);
    expect((await reopened.consume('k', hour(3, 'page:'), 1))[0].remaining).toBe(1);
    await reopened.close();
    expect(pageSize(existing)).toBe(4096);

    const given = new Database(file());
    const own = new SqliteStore({ database: given });
    await own.consume('k', hour(3, 'page:'), 1);
    await own.close();
    expect(given.pragma('page_size', { simple: true })).toBe(4096);
    given.close();
  });

  it('uses a better-sqlite3 Database it is given, and leaves it open', async () => {
    const db = new Database(file());
    db.exec('CREATE TABLE app (x)');
    const store = new SqliteStore({ database: db });
    await store.consume('k', hour(3, 'own:'), 2);
    await store.close();
    expect(db.open).toBe(true);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    const row = db.prepare('SELECT bucket, key FROM floodgate_entries').get();
    expect(row).toEqual({ bucket: 'own:3-in-1h:fw', key: 'k' });
    expect(db.prepare("SELECT value FROM floodgate_meta WHERE name = 'schema_version'").pluck().get()).toBe(
      1,
    );
    db.close();
  });
});

describe('SqliteStore: bad files fail at construction with the path and the cause', () => {
  it('a directory that does not exist', () => {
    const path = join(dir, 'missing', 'limits.db');
    const error = thrown(() => new SqliteStore({ path }));
    expect(error.code).toBe('FLOODGATE_STORE_OPEN_FAILED');
    expect(error.message).toContain(path);
    expect(error.message).toContain('directory does not exist');
  });

  it('a path under a regular file (unwritable)', () => {
    const blocker = join(dir, 'plain-file');
    writeFileSync(blocker, 'x');
    const error = thrown(() => new SqliteStore({ path: join(blocker, 'limits.db') }));
    expect(error.code).toBe('FLOODGATE_STORE_OPEN_FAILED');
    expect(error.message).toContain(join(blocker, 'limits.db'));
  });

  it('a directory', () => {
    const error = thrown(() => new SqliteStore({ path: dir }));
    expect(error.code).toBe('FLOODGATE_STORE_OPEN_FAILED');
    expect(error.message).toContain(JSON.stringify(dir));
    expect(error.message).toMatch(/unable to open database file|directory/);
  });

  it('a file that is not SQLite', () => {
    const path = join(dir, 'notes.txt');
    writeFileSync(path, 'these are my notes, not a database\n'.repeat(200));
    const error = thrown(() => new SqliteStore({ path }));
    expect(error.code).toBe('FLOODGATE_STORE_OPEN_FAILED');
    expect(error.message).toContain(path);
    expect(error.message).toContain('SQLITE_NOTADB');
    expect(error.message).toContain('not a SQLite database');
  });

  it('a database locked by another connection', () => {
    const path = file();
    const holder = new Database(path);
    holder.pragma('locking_mode = EXCLUSIVE');
    holder.exec('CREATE TABLE t (x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)');
    const error = thrown(() => new SqliteStore({ path, busyTimeoutMs: 50 }));
    expect(error.code).toBe('FLOODGATE_STORE_OPEN_FAILED');
    expect(error.message).toContain(path);
    expect(error.message).toContain('SQLITE_BUSY');
    expect(error.message).toContain('raise busyTimeoutMs');
    holder.exec('COMMIT');
    holder.close();
  });

  it('a file already at the current schema opens while another connection holds the write lock (opening only reads it)', async () => {
    const path = file();
    await new SqliteStore({ path }).close();
    const holder = new Database(path);
    holder.exec('BEGIN IMMEDIATE');
    const store = new SqliteStore({ path, busyTimeoutMs: 50, sweepIntervalMs: 0 });
    const pending = store.consume('k', hour(5, 'open-busy:'), 1);
    holder.exec('ROLLBACK');
    expect((await pending)[0].remaining).toBe(4);
    await store.close();
    holder.close();
  });

  it('a file written by a newer schema version', () => {
    const path = file();
    const db = new Database(path);
    db.exec(
      "CREATE TABLE floodgate_meta (name TEXT PRIMARY KEY, value); INSERT INTO floodgate_meta VALUES ('schema_version', 99)",
    );
    db.close();
    const error = thrown(() => new SqliteStore({ path }));
    expect(error.code).toBe('FLOODGATE_STORE_OPEN_FAILED');
    expect(error.message).toContain('schema version 99');
  });
});

describe('SqliteStore: requests', () => {
  it('a request-time lock timeout rejects with FLOODGATE_STORE_FAILED; the Limiter degrades; then it recovers', async () => {
    const stackTraceLimit = Error.stackTraceLimit;
    const { store, policies, other } = await lockHeldAfterOneCheck(30, hour(10, 'busy:'));
    const failure = await store.consume('k', policies, 1).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(isFloodgateError(failure, 'FLOODGATE_STORE_FAILED')).toBe(true);
    expect((failure as Error).message).toContain('SQLITE_BUSY');
    // The lock tries capture no stack; the setting they lowered is back.
    expect(Error.stackTraceLimit).toBe(stackTraceLimit);
    const limiter = new Limiter({ limit: '10/h', prefix: 'busy:', store, skipOnError: true });
    expect((await limiter.consume('k')).degraded).toBe('open');
    other.exec('ROLLBACK');
    other.close();
    // The failed calls consumed nothing.
    expect((await store.consume('k', policies, 1))[0].remaining).toBe(8);
    await store.close();
  });

  it('a lock held past the short blocking wait does not hold up the event loop; the check commits once it is free', async () => {
    const { store, policies, other } = await lockHeldAfterOneCheck(2000, hour(10, 'held:'));
    let settled = false;
    const pending = store.consume('k', policies, 1).finally(() => {
      settled = true;
    });
    // While the check waits for the lock, timers keep running: this process could not have
    // released the lock below if the wait blocked the loop (it did, for busyTimeoutMs, before).
    const longestStall = await timerStalls(20, 5);
    expect(settled).toBe(false);
    expect(longestStall).toBeLessThan(1000);
    // health() says what the calls are waiting for (the file itself still reads fine).
    const health = await store.health();
    expect(health.ok).toBe(true);
    expect(health.detail).toMatch(
      /; 1 call waiting \d+ ms for the write lock, which another connection holds$/,
    );
    other.exec('ROLLBACK');
    expect((await pending)[0].remaining).toBe(8);
    expect((await store.health()).detail).not.toContain('waiting');
    // The calls that arrived while it waited commit behind it, in order.
    other.exec('BEGIN IMMEDIATE');
    const queued = [1, 2, 3].map(() => store.consume('k', policies, 1));
    await timerStalls(5, 5);
    other.exec('ROLLBACK');
    expect((await Promise.all(queued)).map(([d]) => d.remaining)).toEqual([7, 6, 5]);
    other.close();
    await store.close();
  });

  it('a group that times out on the lock takes the calls queued behind it along, so the queue cannot grow while the lock stays taken', async () => {
    const { store, policies, other } = await lockHeldAfterOneCheck(300, hour(5000, 'pile:'));
    // More calls than one group holds (1,024), all waiting on the same lock.
    const rejectedAt: number[] = [];
    const calls = Array.from({ length: 1500 }, () =>
      store.consume('k', policies, 1).then(
        () => 'committed',
        (error: unknown) => {
          rejectedAt.push(performance.now());
          return isFloodgateError(error, 'FLOODGATE_STORE_FAILED') ? 'rejected' : error;
        },
      ),
    );
    expect(new Set(await Promise.all(calls))).toEqual(new Set(['rejected']));
    // All at the first timeout; before, the 476 beyond the first group waited a second one.
    expect(Math.max(...rejectedAt) - Math.min(...rejectedAt)).toBeLessThan(150);
    other.exec('ROLLBACK');
    expect((await store.consume('k', policies, 1))[0].remaining).toBe(4998);
    other.close();
    await store.close();
  });

  it('a Limiter answers by its failure policy within its deadline while the lock is held; the check it gave up on is still counted', async () => {
    const path = file();
    const store = new SqliteStore({ path, busyTimeoutMs: 2000, sweepIntervalMs: 0 });
    const limiter = new Limiter({ limit: '10/h', prefix: 'late:', store, skipOnError: true, timeoutMs: 50 });
    expect((await limiter.consume('k')).remaining).toBe(9);
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    const decision = await limiter.consume('k');
    expect(decision.degraded).toBe('open');
    expect(decision.allowed).toBe(true);
    other.exec('ROLLBACK');
    other.close();
    // Like a Redis script that ran after its deadline: the check committed late and counts.
    const [after] = await store.peek('k', limiter.policies);
    expect(after.remaining).toBe(8);
    await limiter.close();
  });

  it('the background sweep does not wait on a busy file; it deletes at its next interval once the file is free', async () => {
    const path = file();
    const clock = new TestClock();
    const store = new SqliteStore({ path, busyTimeoutMs: 2000, sweepIntervalMs: 10, clock: clock.now });
    await store.consume('k', hour(5, 'sweep-busy:'), 1);
    clock.at(2 * 3_600_000 + 120_000);
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    const longestStall = await timerStalls(20, 5);
    expect(longestStall).toBeLessThan(1000);
    expect(other.prepare('SELECT count(*) FROM floodgate_entries').pluck().get()).toBe(1);
    other.exec('ROLLBACK');
    const deadline = Date.now() + 10_000;
    while (store.swept < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(store.swept).toBe(1);
    expect(other.prepare('SELECT count(*) FROM floodgate_entries').pluck().get()).toBe(0);
    other.close();
    await store.close();
  });

  it('checks that arrive in one tick commit together, in arrival order, each seeing the ones before', async () => {
    const store = new SqliteStore({ path: file() });
    const policies = hour(5, 'order:');
    const results = await Promise.all(Array.from({ length: 8 }, () => store.consume('k', policies, 1)));
    expect(results.map((r) => r[0].remaining)).toEqual([4, 3, 2, 1, 0, 0, 0, 0]);
    expect(results.map((r) => r[0].allowed)).toEqual([true, true, true, true, true, false, false, false]);
    // A peek and a reset queued behind consumes see them, in order.
    const [, peeked, , after] = await Promise.all([
      store.consume('j', policies, 2),
      store.peek('j', policies),
      store.reset('j', [policies[0].bucket]),
      store.peek('j', policies),
    ]);
    expect(peeked[0].remaining).toBe(3);
    expect(after[0].remaining).toBe(5);
    await store.close();
  });

  it('a caller checking in a loop gets no loop turn per check, yet a timer still runs among them', async () => {
    const store = new SqliteStore({ path: file() });
    const limiter = new Limiter({ limit: 2000, window: '1h', prefix: 'loop:', store });
    // Enough checks to outlast the 1 ms stretch after which the store lets the loop turn, even where
    // a check takes a few µs (here ~30).
    const checks = 1000;
    let done = 0;
    // Event-loop turns, counted by an immediate that schedules itself again while the loop runs.
    let turns = 0;
    let counting = true;
    const count = () => {
      turns++;
      if (counting) setImmediate(count);
    };
    setImmediate(count);
    let timerRanAfter = -1;
    setTimeout(() => {
      timerRanAfter = done;
    }, 0);
    const remaining: number[] = [];
    for (let i = 0; i < checks; i++) {
      const decision = await limiter.consume('k');
      remaining.push(decision.remaining);
      done++;
    }
    counting = false;
    expect(remaining).toEqual(Array.from({ length: checks }, (_, i) => 1999 - i));
    // Before, every check waited for the turn's group commit: at least one turn per check. Now the
    // store commits the caller's next check from microtasks, letting the loop turn about once per ms.
    expect(turns).toBeLessThan(checks / 2);
    expect(timerRanAfter).toBeGreaterThanOrEqual(0);
    expect(timerRanAfter).toBeLessThan(checks);
    await limiter.close();
    await store.close();
  });

  it('close() settles calls already queued, then rejects new ones with FLOODGATE_CLOSED', async () => {
    const store = new SqliteStore({ path: file() });
    const pending = store.consume('k', hour(5, 'close:'), 1);
    await store.close();
    expect((await pending)[0].remaining).toBe(4);
    await expect(store.consume('k', hour(5, 'close:'), 1)).rejects.toMatchObject({
      code: 'FLOODGATE_CLOSED',
    });
    expect(await store.health()).toEqual({ ok: false, latencyMs: 0, detail: 'sqlite: closed' });
  });

  it('close() while a group waits for a lock held elsewhere: the event loop runs meanwhile; the group commits once the lock is free', async () => {
    const { store, policies, other } = await lockHeldAfterOneCheck(2000, hour(5, 'close-held:'));
    const pending = store.consume('k', policies, 1);
    await timerStalls(3, 5); // the group has found the lock taken and waits from a timer
    let closed = false;
    const closing = store.close().then(() => {
      closed = true;
    });
    // A call made once close() began is refused; the queued one still waits.
    await expect(store.consume('k', policies, 1)).rejects.toMatchObject({ code: 'FLOODGATE_CLOSED' });
    expect(await timerStalls(10, 5)).toBeLessThan(1000);
    expect(closed).toBe(false);
    other.exec('ROLLBACK');
    await closing;
    expect((await pending)[0].remaining).toBe(3);
    expect(store.close()).toBe(store.close()); // closing again waits for the same close
    other.close();
  });

  it('close() while the lock stays held past busyTimeoutMs: the queued calls reject, nothing of them counted', async () => {
    const { path, store, policies, other } = await lockHeldAfterOneCheck(100, hour(5, 'close-busy:'));
    const pending = store.consume('k', policies, 1).then(
      () => 'committed',
      (error: unknown) => (isFloodgateError(error, 'FLOODGATE_STORE_FAILED') ? 'rejected' : error),
    );
    await store.close();
    expect(await pending).toBe('rejected');
    other.exec('ROLLBACK');
    const reopened = new SqliteStore({ path, sweepIntervalMs: 0 });
    expect((await reopened.peek('k', policies))[0].remaining).toBe(4);
    await reopened.close();
    other.close();
  });

  it('limits survive a restart (close and reopen the file)', async () => {
    const path = file();
    const policies = parsePolicies(['3/h', '10/d'], { prefix: 'restart:', algorithm: 'sliding-log' });
    const first = new SqliteStore({ path });
    await first.consume('k', policies, 2);
    await first.close();
    const second = new SqliteStore({ path });
    expect((await second.peek('k', policies)).map((d) => d.remaining)).toEqual([1, 8]);
    await second.close();
  });

  it('the sweep deletes expired rows in batches, and the background sweep runs by itself', async () => {
    const clock = new TestClock();
    const path = file();
    const store = new SqliteStore({ path, clock: clock.now, sweepIntervalMs: 0 });
    const short = parsePolicies({ limit: 5, window: '1s' }, { prefix: 'sweep:', algorithm: 'fixed-window' });
    const long = hour(5, 'keep:');
    await Promise.all(Array.from({ length: 1200 }, (_, i) => store.consume(`k${i}`, short, 1)));
    await store.consume('kept', long, 1);
    const count = () =>
      (store as unknown as { db: Database.Database }).db
        .prepare('SELECT count(*) FROM floodgate_entries')
        .pluck()
        .get();
    expect(count()).toBe(1201);
    clock.at(30_000); // expired, but maybe not yet a whole sweep minute past expiry
    store.sweep();
    clock.at(121_000);
    expect(store.sweep()).toBe(1200);
    expect(count()).toBe(1);
    await store.close();
    const reopened = new Database(path);
    const countIn = () => reopened.prepare('SELECT count(*) FROM floodgate_entries').pluck().get();

    // In the background: a store with a short interval empties the table by itself.
    const background = new SqliteStore({ path, clock: clock.now, sweepIntervalMs: 20 });
    await Promise.all(Array.from({ length: 700 }, (_, i) => background.consume(`b${i}`, short, 1)));
    clock.at(400_000);
    const deadline = Date.now() + 10_000;
    while (background.swept < 700 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(background.swept).toBe(700);
    expect(countIn()).toBe(1); // "kept" lives for an hour
    await background.close();
    reopened.close();
  });

  it('decides exactly like the memory store on random traces (every algorithm, several policies)', async () => {
    const sqliteClock = new TestClock();
    const memoryClock = new TestClock();
    const sqlite = new SqliteStore({ path: file(), clock: sqliteClock.now });
    const memory = new MemoryStore({ clock: memoryClock.now });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ALGORITHM_NAMES),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 700 }), fc.integer({ min: -2, max: 4 }), fc.boolean()), {
          minLength: 1,
          maxLength: 40,
        }),
        async (algorithm, trace) => {
          const policies = parsePolicies(['5/s', '12/10s'], { prefix: `agree${++run}:`, algorithm });
          let t = 0;
          for (const [dt, cost, peek] of trace) {
            t += dt;
            sqliteClock.at(t);
            memoryClock.at(t);
            const a = peek ? await sqlite.peek('k', policies) : await sqlite.consume('k', policies, cost);
            const b = peek ? await memory.peek('k', policies) : await memory.consume('k', policies, cost);
            expect(a).toEqual(b);
          }
        },
      ),
      { numRuns: 150 },
    );
    await sqlite.close();
    await memory.close();
  });
});

describe('SqliteStore: row cache (rows kept in memory, read again by rowid after another connection commits)', () => {
  const countRows = (store: SqliteStore) =>
    (store as unknown as { db: Database.Database }).db
      .prepare('SELECT count(*) FROM floodgate_entries')
      .pluck()
      .get();

  /** Two stores on one new file (two connections, as two processes would have) and 10 an hour. */
  const twoConnections = (prefix: string) => {
    const path = file();
    const policies = hour(10, prefix);
    return {
      a: new SqliteStore({ path, sweepIntervalMs: 0 }),
      b: new SqliteStore({ path, sweepIntervalMs: 0 }),
      policies,
      buckets: policies.map((p) => p.bucket),
    };
  };

  it("two stores on one file take turns on a key: each sees the other's writes, exactly", async () => {
    const { a, b, policies } = twoConnections('turns:');
    const remaining: number[] = [];
    for (let i = 0; i < 14; i++) {
      const store = i % 2 === 0 ? a : b;
      remaining.push((await store.consume('k', policies, 1))[0].remaining);
    }
    expect(remaining).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0, 0, 0]);
    await a.close();
    await b.close();
  });

  it("a cached row's rowid given to another key by another connection: each key keeps its own count", async () => {
    const { a, b, policies, buckets } = twoConnections('reuse:');
    const idOf = (key: string) =>
      (a as unknown as { db: Database.Database }).db
        .prepare('SELECT id FROM floodgate_entries WHERE key = ?')
        .pluck()
        .get(key);
    expect((await a.consume('x', policies, 3))[0].remaining).toBe(7); // a caches x's row
    const xId = idOf('x');
    await b.reset('x', buckets);
    // The table's largest rowid was x's: SQLite hands it to the next row, y's.
    expect((await b.consume('y', policies, 1))[0].remaining).toBe(9);
    expect(idOf('y')).toBe(xId);
    expect((await a.consume('x', policies, 1))[0].remaining).toBe(9);
    expect((await b.peek('y', policies))[0].remaining).toBe(9);
    expect((await a.peek('y', policies))[0].remaining).toBe(9);
    await a.close();
    await b.close();
  });

  it('a lone check on a cached row is one conditional UPDATE, made only while the row is as cached', async () => {
    const { a, b, policies } = twoConnections('alone:');
    const alone = vi.spyOn(
      SqliteStore.prototype as unknown as { consumeAlone: () => unknown },
      'consumeAlone',
    );
    const madeAlone = () => alone.mock.results.filter((r) => r.value !== undefined).length;
    try {
      expect((await a.consume('k', policies, 1))[0].remaining).toBe(9); // no cached row yet: a transaction
      expect(madeAlone()).toBe(0);
      expect((await a.consume('k', policies, 1))[0].remaining).toBe(8);
      expect((await a.consume('k', policies, 2))[0].remaining).toBe(6);
      expect(madeAlone()).toBe(2);
      expect((await b.consume('k', policies, 1))[0].remaining).toBe(5); // b reads the row: a's copy is stale
      expect((await a.consume('k', policies, 1))[0].remaining).toBe(4); // so a's update matches nothing
      expect(madeAlone()).toBe(2);
      expect((await a.consume('k', policies, 1))[0].remaining).toBe(3); // read again just now: alone
      expect(madeAlone()).toBe(3);
      // Several checks at once go in one transaction; so does a denial, decided from the file.
      const together = await Promise.all([1, 2, 3].map(() => a.consume('k', policies, 1)));
      expect(together.map((d) => d[0].remaining)).toEqual([2, 1, 0]);
      expect((await a.consume('k', policies, 1))[0].allowed).toBe(false);
      expect(madeAlone()).toBe(3);
    } finally {
      alone.mockRestore();
      await a.close();
      await b.close();
    }
  });

  it('a lone check on a cached row whose rowid another key now holds in the very same state: each key keeps its own count', async () => {
    const path = file();
    const clock = new TestClock();
    const a = new SqliteStore({ path, clock: clock.now, sweepIntervalMs: 0 });
    const b = new SqliteStore({ path, clock: clock.now, sweepIntervalMs: 0 });
    const policies = hour(10, 'twin:');
    expect((await a.consume('x', policies, 3))[0].remaining).toBe(7); // a caches x's row
    await b.reset(
      'x',
      policies.map((p) => p.bucket),
    );
    // Same rowid (x's was the largest), same window start, count and expiry: only the key differs.
    expect((await b.consume('y', policies, 3))[0].remaining).toBe(7);
    expect((await a.consume('x', policies, 1))[0].remaining).toBe(9);
    expect((await a.peek('y', policies))[0].remaining).toBe(7);
    await a.close();
    await b.close();
  });

  it('a cached row another connection deleted and wrote anew is read by key', async () => {
    const { a, b, policies, buckets } = twoConnections('anew:');
    expect((await a.consume('x', policies, 4))[0].remaining).toBe(6);
    await a.consume('filler', policies, 1); // a larger rowid: x's is not handed out again
    await b.reset('x', buckets);
    expect((await b.consume('x', policies, 2))[0].remaining).toBe(8);
    expect((await a.consume('x', policies, 1))[0].remaining).toBe(7);
    expect((await b.consume('x', policies, 1))[0].remaining).toBe(6);
    await a.close();
    await b.close();
  });

  it('after the sweep deleted a cached row, the next check writes a new row rather than the old id', async () => {
    const clock = new TestClock();
    const store = new SqliteStore({ path: file(), clock: clock.now, sweepIntervalMs: 0 });
    const short = parsePolicies({ limit: 5, window: '1s' }, { prefix: 'gone:', algorithm: 'fixed-window' });
    expect((await store.consume('k', short, 1))[0].remaining).toBe(4);
    clock.at(121_000);
    expect(store.sweep()).toBe(1);
    expect(countRows(store)).toBe(0);
    expect((await store.consume('k', short, 1))[0].remaining).toBe(4);
    expect(countRows(store)).toBe(1);
    expect((await store.consume('k', short, 1))[0].remaining).toBe(3);
    await store.close();
  });

  it('keeps short states, and no long sliding log (its numbers could be thousands per key)', async () => {
    const clock = new TestClock();
    const store = new SqliteStore({ path: file(), clock: clock.now });
    const cached = (policies: ReturnType<typeof hour>) =>
      (store as unknown as { rows: RowCache }).rows.get(policies[0].bucket, 'k');
    // A log holds a (time, count) pair per distinct time: one check per ms adds a pair each.
    let t = 0;
    const tick = async (policies: ReturnType<typeof hour>, cost = 1) => {
      clock.at(++t);
      return (await store.consume('k', policies, cost))[0];
    };
    const short = hour(5, 'short:', 'sliding-log');
    const long = hour(20, 'long:', 'sliding-log');
    for (let i = 0; i < 5; i++) await tick(short);
    expect(cached(short)?.state).toHaveLength(10);
    await tick(long, 8);
    expect(cached(long)?.state).toHaveLength(2);
    for (let i = 0; i < 8; i++) await tick(long);
    expect(cached(long)).toBeUndefined(); // 9 pairs: 18 numbers
    expect((await tick(long)).remaining).toBe(3);
    await store.close();
  });

  it('reset and clear reach cached rows', async () => {
    const store = new SqliteStore({ path: file() });
    const policies = hour(5, 'rc:');
    await store.consume('k', policies, 3);
    await store.reset(
      'k',
      policies.map((p) => p.bucket),
    );
    expect((await store.consume('k', policies, 1))[0].remaining).toBe(4);
    await store.clear('rc:');
    expect((await store.consume('k', policies, 1))[0].remaining).toBe(4);
    await store.close();
  });

  it('rowCacheSize: 0 turns it off; bad values are refused with what to write', async () => {
    const off = createStore(`sqlite:///${file()}?rowCacheSize=0`) as SqliteStore;
    expect((off as unknown as { rows: unknown }).rows).toBeUndefined();
    await off.close();
    for (const bad of [-1, 1.5, Number.NaN, '10' as never, 16_000_001]) {
      const error = thrown(() => new SqliteStore({ path: ':memory:', rowCacheSize: bad }));
      expect(error.code).toBe('FLOODGATE_INVALID_OPTION');
      expect(error.message).toContain('rowCacheSize');
      expect(error.message).toContain('like 100000');
    }
  });

  it('decides like the memory store on random traces across keys, with a tiny cache, three connections, resets and sweeps', async () => {
    const path = file();
    const sqliteClock = new TestClock();
    const memoryClock = new TestClock();
    // A cache of 2 rows on 3 keys (emptied as it fills), a second connection, one without a cache.
    const stores = [
      new SqliteStore({ path, clock: sqliteClock.now, rowCacheSize: 2, sweepIntervalMs: 0 }),
      new SqliteStore({ path, clock: sqliteClock.now, sweepIntervalMs: 0 }),
      new SqliteStore({ path, clock: sqliteClock.now, rowCacheSize: 0, sweepIntervalMs: 0 }),
    ];
    const memory = new MemoryStore({ clock: memoryClock.now });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ALGORITHM_NAMES),
        // One policy too: a lone check on it is decided from the cached row and written only if the
        // row is unchanged (consumeAlone), which the other connections' writes here often make false.
        fc.constantFrom(['5/s', '12/10s'], ['7/2s']),
        fc.array(
          fc.record({
            dt: fc.oneof(fc.integer({ min: 0, max: 700 }), fc.constant(150_000)),
            store: fc.integer({ min: 0, max: 2 }),
            key: fc.constantFrom('a', 'b', 'c'),
            op: fc.constantFrom('consume', 'consume', 'consume', 'peek', 'reset', 'sweep'),
            cost: fc.integer({ min: 0, max: 3 }),
          }),
          { minLength: 1, maxLength: 40 },
        ),
        async (algorithm, rates, trace) => {
          const policies = parsePolicies(rates, { prefix: `cache${++run}:`, algorithm });
          const buckets = policies.map((p) => p.bucket);
          let t = 0;
          for (const { dt, store: which, key, op, cost } of trace) {
            t += dt;
            sqliteClock.at(t);
            memoryClock.at(t);
            const store = stores[which];
            if (op === 'sweep') {
              store.sweep();
            } else if (op === 'reset') {
              await store.reset(key, buckets);
              await memory.reset(key, buckets);
            } else if (op === 'peek') {
              expect(await store.peek(key, policies)).toEqual(await memory.peek(key, policies));
            } else {
              expect(await store.consume(key, policies, cost)).toEqual(
                await memory.consume(key, policies, cost),
              );
            }
          }
        },
      ),
      { numRuns: 200 },
    );
    for (const store of stores) await store.close();
    await memory.close();
  });
});

describe('SqliteStore: state codec (BLOBs written from kept buffers, read back as hex(state))', () => {
  it('every state reads back exactly as written, through SQLite, whatever the numbers', () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE s (id INTEGER PRIMARY KEY, state BLOB NOT NULL)');
    const insert = db.prepare('INSERT INTO s (state) VALUES (?)');
    const read = db.prepare('SELECT hex(state) FROM s WHERE id = ?').pluck();
    const encoder = new StateEncoder();
    const number = fc.oneof(
      fc.double({ noNaN: true }),
      fc.integer({ min: -(2 ** 53), max: 2 ** 53 }),
      fc.constantFrom(0, -0, 1_790_000_000_000.25, Number.MAX_VALUE, Number.MIN_VALUE),
    );
    fc.assert(
      fc.property(fc.array(number, { maxLength: 6 }), (state) => {
        const id = Number(insert.run(encoder.encode(state)).lastInsertRowid);
        // The kept buffer is written again by the next call: SQLite must have copied it.
        encoder.encode(state.map((x) => -x));
        const back = decodeHexState(read.get(id) as string);
        expect(back.length).toBe(state.length);
        for (let i = 0; i < state.length; i++) expect(Object.is(back[i], state[i])).toBe(true);
      }),
      { numRuns: 2000 },
    );
    db.close();
  });
});

describe('SqliteStore: driver', () => {
  it('warns (FLOODGATE_UNSAFE_SQLITE_DRIVER) about better-sqlite3 12 on Node 24, the pair that can abort', () => {
    const message = unsafeDriverPair('24.21.0', '12.11.1');
    expect(message).toContain('better-sqlite3 12.11.1 on Node.js 24.21.0');
    expect(message).toContain('npm install better-sqlite3@13');
    expect(unsafeDriverPair('25.1.0', '11.10.0')).toContain('npm install better-sqlite3@13');
    for (const [node, driver] of [
      ['20.20.2', '12.11.1'],
      ['22.23.3', '12.11.1'],
      ['24.21.0', '13.2.0'],
      ['24.21.0', undefined],
    ] as const) {
      expect(unsafeDriverPair(node, driver)).toBeUndefined();
    }
  });

  it('without better-sqlite3 installed: FLOODGATE_MISSING_DRIVER saying what to install', () => {
    withIsolatedCore(
      () => {},
      (isolated, result) => {
        expect(result.code).toBe('FLOODGATE_MISSING_DRIVER');
        expect(result.message).toContain('npm install better-sqlite3');
        expect(existsSync(join(isolated, 'x.db'))).toBe(false);
      },
    );
  });

  // better-sqlite3 loads its binary on the first `new Database()`: a binary built for another
  // Node.js, or none (pnpm 10 without onlyBuiltDependencies), fails there, and is the package's
  // fault, not the file's. The real package and its loader, with a binary that is no binary.
  for (const [what, binary] of [
    ['a native binary that does not load (built for another Node.js, say)', 'not an ELF file'],
    ['no native binary at all (pnpm 10 skipped its build script)', undefined],
  ] as const) {
    it(`better-sqlite3 with ${what}: FLOODGATE_MISSING_DRIVER saying to rebuild it`, () => {
      withIsolatedCore(
        (modules) => {
          // The real packages, found as Node finds them, copied without their binary.
          const packageDir = (name: string, from: string) =>
            dirname(realpathSync(createRequire(from).resolve(`${name}/package.json`)));
          const driverDir = packageDir('better-sqlite3', import.meta.url);
          const bindingsDir = packageDir('bindings', join(driverDir, 'package.json'));
          const uriDir = packageDir('file-uri-to-path', join(bindingsDir, 'package.json'));
          cpSync(bindingsDir, join(modules, 'bindings'), { recursive: true });
          cpSync(uriDir, join(modules, 'file-uri-to-path'), { recursive: true });
          const driver = join(modules, 'better-sqlite3');
          for (const part of ['package.json', 'lib']) {
            cpSync(join(driverDir, part), join(driver, part), { recursive: true });
          }
          if (binary !== undefined) {
            mkdirSync(join(driver, 'build', 'Release'), { recursive: true });
            writeFileSync(join(driver, 'build', 'Release', 'better_sqlite3.node'), binary);
          }
        },
        (isolated, result) => {
          expect(result.code).toBe('FLOODGATE_MISSING_DRIVER');
          expect(result.message).toContain('native binary did not load');
          expect(result.message).toContain(`another Node.js than ${process.version}`);
          expect(result.message).toContain('npm rebuild better-sqlite3');
          expect(result.message).toContain('"onlyBuiltDependencies": ["better-sqlite3"]');
          // The loader's own words are kept, on one line, without the paths it tried.
          expect(result.message).toContain(
            binary === undefined ? 'Could not locate the bindings file' : 'better_sqlite3.node',
          );
          expect(result.message).not.toContain('\n');
          expect(result.message).not.toContain('→');
          expect(result.message).not.toContain('writable file'); // not blamed on the path
          expect(existsSync(join(isolated, 'x.db'))).toBe(false);
        },
      );
    });
  }
});

describe('SqliteStore with better-sqlite3 13', () => {
  // From 13 the package requires build/Release/better_sqlite3.node itself (lib/binding.js) instead
  // of going through `bindings`, and it needs Node 22, so it cannot be installed beside the suite's
  // 12.x here: a stand-in package with 13's version and that one loading step, which makes Node
  // throw its real MODULE_NOT_FOUND for the missing binary. (Found running the suite with 13.2.0.)
  it('and no native binary: FLOODGATE_MISSING_DRIVER saying to rebuild it, not blamed on the path', () => {
    withIsolatedCore(
      (modules) => {
        const driver = join(modules, 'better-sqlite3');
        mkdirSync(join(driver, 'lib'), { recursive: true });
        writeFileSync(
          join(driver, 'package.json'),
          JSON.stringify({ name: 'better-sqlite3', version: '13.2.0', main: 'lib/index.js' }),
        );
        writeFileSync(
          join(driver, 'lib', 'index.js'),
          `const path = require('path');
           module.exports = function Database() {
             require(path.join(__dirname, '..', 'build', 'Release', 'better_sqlite3.node'));
           };`,
        );
      },
      (isolated, result) => {
        expect(result.code).toBe('FLOODGATE_MISSING_DRIVER');
        expect(result.message).toContain('native binary did not load');
        expect(result.message).toContain("Cannot find module '");
        expect(result.message).toContain('better_sqlite3.node');
        expect(result.message).toContain('npm rebuild better-sqlite3');
        expect(result.message).not.toContain('writable file');
        expect(existsSync(join(isolated, 'x.db'))).toBe(false);
      },
    );
  });
});

/**
 * A copy of the core sources where no node_modules can be found above them, `prepare` filling its
 * own node_modules; it creates a SQLite store there in a process of its own and hands `check` the
 * error's code and message.
 */
function withIsolatedCore(
  prepare: (modules: string) => void,
  check: (isolated: string, result: { code: string; message: string }) => void,
): void {
  const isolated = mkdtempSync(join(tmpdir(), 'floodgate-nodriver-'));
  try {
    cpSync(fileURLToPath(new URL('../src', import.meta.url)), join(isolated, 'src'), { recursive: true });
    prepare(join(isolated, 'node_modules'));
    writeFileSync(
      join(isolated, 'probe.mts'),
      `import { createStore } from './src/uri.ts';
       try { createStore('sqlite:///${join(isolated, 'x.db')}'); console.log('opened'); }
       catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`,
    );
    const out = execFileSync(process.execPath, ['--import', 'tsx', join(isolated, 'probe.mts')], {
      cwd: fileURLToPath(new URL('../../..', import.meta.url)), // where tsx resolves
      encoding: 'utf8',
      env: { ...process.env, NODE_PATH: '' }, // npx puts the hoisted packages on NODE_PATH
    });
    check(isolated, JSON.parse(out.trim()));
  } finally {
    rmSync(isolated, { recursive: true, force: true });
  }
}
