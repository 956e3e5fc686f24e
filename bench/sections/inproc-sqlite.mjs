// In-process SQLite: checks/s on a file on disk with 100k distinct keys, at 1 and 64 in flight,
// floodgate (every algorithm, through Limiter.consume) beside rate-limiter-flexible's RateLimiterSQLite
// on better-sqlite3. Both in WAL mode with synchronous=NORMAL, so they promise the same durability.
// Then 4 processes on one file against 1 process (floodgate's default algorithm and the peer).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { RateLimiterSQLite } from 'rate-limiter-flexible';
import { firstLine, untilHealthy } from '../lib/floodgate.mjs';
import { fmtInt, fmtNum, fmtOps } from '../lib/format.mjs';
import { interleave, openWorker } from '../lib/isolate.mjs';
import {
  keysInOrder,
  makeKeys,
  median,
  roundRatio,
  runInFlight,
  shuffled,
  summarize,
} from '../lib/measure.mjs';
import { ALGORITHMS } from '../lib/names.mjs';

const HOUR_MS = 3_600_000;
const BIG = 1_000_000_000;
const RLF = 'rate-limiter-flexible';
/** No limiter: one committed write per check, the least a check made alone can cost on this disk. */
const FLOOR = 'one-committed-update';
const LEVELS = [1, 64];
const PROCESSES = 4;
/**
 * 64 in flight on the same 100k keys in a fixed pseudo-random order, as clients arrive at a server:
 * a group's checks then land on as many pages as checks, where keys taken in turn share a few.
 */
const RANDOM_CASE = { id: 'random', inFlight: 64 };
const RANDOM_SUBJECTS = ['sliding-window', RLF];
const label = (name) =>
  name === RLF
    ? 'rate-limiter-flexible RateLimiterSQLite.consume'
    : name === FLOOR
      ? 'better-sqlite3 alone: one committed UPDATE per check (the floor, no limiter)'
      : `floodgate Limiter.consume (sqlite, ${name})`;

/**
 * One row's counter incremented by one UPDATE statement, its own write transaction (the row found by
 * a rowid kept in memory, as floodgate's row cache does): what any limiter that commits each check
 * made alone must at least do, with the same pragmas. Synchronous, so it pays no event-loop turn
 * either.
 */
function floorSubject(path) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(
    'CREATE TABLE IF NOT EXISTS floor_bench (id INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL, hits INTEGER NOT NULL)',
  );
  const insert = db.prepare('INSERT INTO floor_bench (key, hits) VALUES (?, 1)');
  const update = db.prepare('UPDATE floor_bench SET hits = hits + 1 WHERE id = ?');
  const ids = new Map();
  const op = async (key) => {
    const id = ids.get(key);
    if (id === undefined) ids.set(key, Number(insert.run(key).lastInsertRowid));
    else update.run(id);
  };
  return { op, close: () => db.close() };
}

async function makeSubject(name, path) {
  if (name === FLOOR) return floorSubject(path);
  if (name === RLF) {
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    const limiter = new RateLimiterSQLite({
      storeClient: db,
      storeType: 'better-sqlite3',
      tableName: 'rlf_bench',
      points: BIG,
      duration: 3600,
    });
    // The table is created asynchronously after construction.
    for (let i = 0; i < 200 && !limiter.tableCreated; i++) await new Promise((r) => setTimeout(r, 10));
    return { op: (key) => limiter.consume(key), close: () => db.close() };
  }
  const { Limiter, SqliteStore } = await import('@floodgate/core');
  const store = new SqliteStore({ path });
  const limit = name === 'sliding-log' ? { limit: 100, window: 1000 } : { limit: BIG, window: HOUR_MS };
  const limiter = new Limiter({ ...limit, algorithm: name, name: 'bench', store });
  // A store that is not built yet throws on the first call: fail here, not in the timed loop. The
  // first calls also connect (and load scripts), which on a busy machine can overrun the Limiter's
  // deadline, so a few degraded answers are retried before the store is declared failing.
  await untilHealthy(limiter, 'SQLite');
  // A degraded Decision (store failed, breaker open, deadline passed) comes back fast and must not
  // count as a check: it is counted as a failure and the row is flagged.
  const op = (key) =>
    limiter.consume(key).then((d) => {
      if (d.degraded) throw new Error(`degraded: ${d.degraded}`);
    });
  return { op, close: () => store.close() };
}

/**
 * Child side: one store on its own file (or on the shared file of the multi-process run). With
 * `randomOrder`, the file the subject's key-order rounds left (every key has its row) is checked in
 * a fixed pseudo-random order.
 */
export async function setup(name, { dir, path, randomOrder }) {
  const subject = await makeSubject(name, path ?? join(dir, `${name}.db`));
  if (randomOrder) return { ...subject, keys: keysInOrder(shuffled(100_000)) };
  const keys = makeKeys(100_000);
  // Every key once before anything is timed, so rounds measure a working set of 100k clients that
  // all have a row, not the first-ever insert of each (which only the first rounds would meet).
  if (path === undefined) {
    for (let i = 0; i < keys.length; i += 64) await Promise.all(keys.slice(i, i + 64).map(subject.op));
  }
  return { ...subject, keys };
}

/** One timed run; with `startAt`, wait for that wall-clock moment first so several processes start together. */
export async function round(state, { inFlight, durationMs, startAt }) {
  if (startAt !== undefined) await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
  return runInFlight(state.op, { keys: state.keys, inFlight, durationMs });
}

export async function teardown(state) {
  await state.close();
}

async function multiProcess(ctx, name, dir, durationMs, rounds) {
  const path = join(dir, `${name}-shared.db`);
  // Create the file and schema once before the race, so the processes only compete on checks.
  const first = await makeSubject(name, path);
  await first.close();
  const workers = await Promise.all(
    Array.from({ length: PROCESSES }, () => openWorker(import.meta.url, name, { path })),
  );
  try {
    // Every process warms up (JIT, statements, page cache) before anything is timed: a process
    // measured cold would charge its warm-up to the side it is timed in.
    for (const worker of workers) await worker.call({ inFlight: 64, durationMs: 300 });
    // Rounds alternate one process alone on the shared file (a different one each round) and all of
    // them at once, so the ratio compares like with like, figures taken seconds apart.
    const alone = [];
    const together = [];
    const ratios = [];
    for (let round = 0; round < rounds; round++) {
      const single = await workers[round % PROCESSES].call({ inFlight: 64, durationMs });
      const startAt = Date.now() + 300;
      const runs = await Promise.all(workers.map((w) => w.call({ inFlight: 64, durationMs, startAt })));
      const total = runs.reduce((sum, r) => sum + r.opsPerSec, 0);
      alone.push(single.opsPerSec);
      together.push(total);
      ratios.push(total / single.opsPerSec);
      ctx.log(
        `  ${label(name)}: 1 process ${fmtInt(single.opsPerSec)}/s, ${PROCESSES} processes ${fmtInt(total)}/s`,
      );
    }
    return {
      opsPerSec: Math.round(median(together)),
      aloneOpsPerSec: Math.round(median(alone)),
      ratio: median(ratios),
      rounds: ratios.map((r) => Math.round(r * 100) / 100),
    };
  } finally {
    await Promise.all(workers.map((w) => w.close()));
  }
}

export default async function run(ctx) {
  const timing = ctx.quick
    ? { durationMs: 150, rounds: 3, warmupMs: 150 }
    : { durationMs: 1000, rounds: 3, warmupMs: 500 };
  const dir = mkdtempSync(join(tmpdir(), 'floodgate-bench-sqlite-'));
  const names = [...ALGORITHMS, RLF, FLOOR];
  try {
    const cases = LEVELS.map((inFlight) => ({ id: inFlight, inFlight }));
    const raw = await interleave(ctx, import.meta.url, {
      subjects: names,
      cases,
      options: { dir },
      ...timing,
      label,
    });
    const results = {};
    for (const name of names) {
      const r = raw[name];
      results[name] = r.missing ? r : Object.fromEntries(LEVELS.map((l) => [l, summarize(r[l])]));
    }
    // Skipped in --quick, like the multi-process run: its time budget has no room for it.
    const random = ctx.quick
      ? {}
      : await interleave(ctx, import.meta.url, {
          subjects: RANDOM_SUBJECTS,
          cases: [RANDOM_CASE],
          options: { dir, randomOrder: true },
          ...timing,
          label,
        });
    for (const name of RANDOM_SUBJECTS) {
      const r = random[name];
      if (r && !r.missing && !results[name].missing) results[name].random = summarize(r.random);
    }
    const multi = {};
    // Skipped in --quick: two more 4-process runs would not fit its time budget.
    for (const name of ctx.quick ? [] : ['sliding-window', RLF]) {
      if (results[name].missing) continue;
      try {
        multi[name] = await multiProcess(ctx, name, dir, 2000, 3);
      } catch (error) {
        multi[name] = { missing: firstLine(error) };
      }
    }

    const rows = names.map((name) => {
      const r = results[name];
      if (r.missing) return [label(name), r.missing, '', '', '', ''];
      const m = multi[name];
      return [
        label(name),
        fmtOps(r[1]),
        fmtNum(r[1].nsPerOp / 1000, 1),
        fmtOps(r[64]),
        r.random ? fmtOps(r.random) : random[name]?.missing ? 'failed' : '',
        m ? (m.missing ?? `${fmtInt(m.opsPerSec)} (1 process: ${fmtInt(m.aloneOpsPerSec)})`) : '',
      ];
    });

    const head = results['sliding-window'];
    const rlf = results[RLF];
    const failed = head.missing ? 0 : head[1].failures + head[64].failures;
    const why =
      head.missing ??
      rlf.missing ??
      (failed > 0 ? `${fmtInt(failed)} checks failed or came back degraded` : undefined);
    const ok = !why;
    const targets = [
      {
        name: 'SQLite, 100k keys, 64 in flight',
        wanted: '>= 100,000 checks/s',
        value: ok ? head[64].opsPerSec : undefined,
        threshold: 100_000,
        show: (v) => `${fmtInt(v)}/s`,
        why,
      },
      {
        name: 'SQLite, 100k keys, 1 in flight, vs RateLimiterSQLite',
        wanted: '>= 2x',
        value: ok ? roundRatio(raw['sliding-window'][1], raw[RLF][1]) : undefined,
        threshold: 2,
        show: (v) => {
          const floor = results[FLOOR];
          const alone = floor.missing ? '' : `; one committed UPDATE alone: ${fmtInt(floor[1].opsPerSec)}/s`;
          return `${v.toFixed(2)}x (${fmtInt(head[1].opsPerSec)} vs ${fmtInt(rlf[1].opsPerSec)}/s${alone})`;
        },
        why,
      },
      {
        name: `SQLite, ${PROCESSES} processes together more than 1 process (64 in flight each)`,
        wanted: '> 1.00x',
        value:
          ok && multi['sliding-window'] && !multi['sliding-window'].missing
            ? multi['sliding-window'].ratio
            : undefined,
        threshold: 1.0000001,
        show: (v) => `${v.toFixed(2)}x`,
        why: why ?? multi['sliding-window']?.missing ?? (ctx.quick ? 'skipped in --quick' : undefined),
      },
    ];
    return {
      title: 'In-process: SQLite store, file on disk, 100k distinct keys',
      tables: [
        {
          columns: [
            'Subject',
            '1 in flight checks/s',
            '1 in flight µs/check',
            '64 in flight checks/s',
            '64 in flight, keys in random order, checks/s',
            `${PROCESSES} processes × 64 in flight, total checks/s`,
          ],
          rows,
          notes: [
            "File on local disk in a fresh temp directory per run; WAL, synchronous=NORMAL for both (floodgate's default; " +
              'the peer set the same so both promise the same durability). Keys cycle through 100,000 distinct keys, each checked once before the timed rounds (so every key has its row: the steady state, not first inserts); subjects interleaved within each round, each timed run after an untimed quarter of its length. ' +
              '"Keys in random order" checks the same 100,000 keys (the file the key-order rounds left) in a fixed pseudo-random order, as clients arrive at a server, for the default algorithm and the peer: the checks of a group then land on as many pages of the file as there are checks, where keys taken in turn share a few, and a commit writes every page it changed. ' +
              `The last column runs ${PROCESSES} processes on one shared file at once (default algorithm for floodgate), ` +
              'after every process warmed up; 3 rounds of 2 s, each timing one process alone then all together; medians, ' +
              'and the target takes the median of the per-round ratios. On a 2-core machine 4 processes compete for 2 cores, ' +
              'so that figure measures contention more than scaling. ' +
              'The floor row is no limiter: better-sqlite3 on the same pragmas updating one row by a rowid kept in memory, one UPDATE statement (its own transaction) per check, synchronously; ' +
              'a check made alone cannot cost less (at 64 in flight it shows what committing every check apart would give).',
          ],
        },
      ],
      data: { single: results, multi },
      targets,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
