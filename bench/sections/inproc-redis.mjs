// In-process Redis: checks/s from one process on 100k distinct keys at 1, 64 and 256 in flight,
// floodgate (every algorithm, through Limiter.consume) beside rate-limiter-flexible's RateLimiterRedis
// and express-rate-limit's rate-limit-redis store (both on ioredis), each in its own process, against
// the bench's own redis-server. Redis commands per check come from INFO commandstats.
import { Redis } from 'ioredis';
import { RedisStore as RlrStore } from 'rate-limit-redis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { untilHealthy } from '../lib/floodgate.mjs';
import { fmtInt, fmtNum, fmtOps } from '../lib/format.mjs';
import { interleave } from '../lib/isolate.mjs';
import { makeKeys, median, roundRatio, runInFlight, summarize } from '../lib/measure.mjs';
import { ALGORITHMS } from '../lib/names.mjs';
import { commandStats, commandsPerCheck } from '../lib/redis-server.mjs';

const HOUR_MS = 3_600_000;
const BIG = 1_000_000_000;
const RLF = 'rate-limiter-flexible';
const RLR = 'rate-limit-redis';
const LEVELS = [1, 64, 256];
const LABELS = {
  [RLF]: 'rate-limiter-flexible RateLimiterRedis.consume',
  [RLR]: 'rate-limit-redis RedisStore.increment',
};
const label = (name) => LABELS[name] ?? `floodgate Limiter.consume (redis, ${name})`;

/** EVALSHA/EVAL calls per check: the round trips that carry checks. */
function scriptCalls(commands) {
  const c = commands.perCommand;
  // FCALL counts: the store runs its script as a Redis Function once the library is loaded.
  return (
    (c.evalsha ?? 0) +
    (c.eval ?? 0) +
    (c.evalsha_ro ?? 0) +
    (c.eval_ro ?? 0) +
    (c.fcall ?? 0) +
    (c.fcall_ro ?? 0)
  );
}

/** A reason when some of floodgate's checks failed or came back degraded: its figures are then not checks. */
function failedChecks(result) {
  const failed = LEVELS.reduce((sum, l) => sum + result[l].failures, 0);
  return failed > 0 ? `${fmtInt(failed)} checks failed or came back degraded` : undefined;
}

/** Per-command medians over the rounds. */
function medianCommands(rounds) {
  const names = new Set(rounds.flatMap((r) => Object.keys(r.commands.perCommand)));
  const perCommand = Object.fromEntries(
    [...names].map((n) => [n, median(rounds.map((r) => r.commands.perCommand[n] ?? 0))]),
  );
  return { total: median(rounds.map((r) => r.commands.total)), perCommand };
}

async function flush(url) {
  const admin = new Redis(url);
  await admin.flushdb();
  admin.disconnect();
}

export async function makeSubject(name, url, prefix) {
  if (name === RLF || name === RLR) {
    const client = new Redis(url);
    if (name === RLF) {
      const limiter = new RateLimiterRedis({
        storeClient: client,
        points: BIG,
        duration: 3600,
        keyPrefix: prefix,
      });
      return { op: (key) => limiter.consume(key), close: () => client.quit() };
    }
    const store = new RlrStore({ sendCommand: (command, ...args) => client.call(command, ...args), prefix });
    store.init({ windowMs: HOUR_MS });
    return { op: (key) => store.increment(key), close: () => client.quit() };
  }
  const { Limiter, RedisStore } = await import('@floodgate/core');
  const store = new RedisStore({ url });
  const limit = name === 'sliding-log' ? { limit: 100, window: 1000 } : { limit: BIG, window: HOUR_MS };
  const limiter = new Limiter({ ...limit, algorithm: name, name: 'bench', prefix, store });
  // A store that is not built yet throws on the first call: fail here, not in the timed loop. The
  // first calls also connect (and load scripts), which on a busy machine can overrun the Limiter's
  // deadline, so a few degraded answers are retried before the store is declared failing.
  await untilHealthy(limiter, 'Redis');
  // A degraded Decision (store failed, breaker open, deadline passed) comes back fast and must not
  // count as a check: it is counted as a failure and the row is flagged.
  const op = (key) =>
    limiter.consume(key).then((d) => {
      if (d.degraded) throw new Error(`degraded: ${d.degraded}`);
    });
  return { op, close: () => store.close() };
}

/** Child side: one limiter (fresh prefix per run) and an admin client for INFO commandstats. */
export async function setup(name, { url }) {
  const subject = await makeSubject(name, url, `bench:${name}:${process.pid}:`);
  return { ...subject, admin: new Redis(url), keys: makeKeys(100_000) };
}

export async function round(state, { inFlight, durationMs }) {
  const before = await commandStats(state.admin);
  const r = await runInFlight(state.op, { keys: state.keys, inFlight, durationMs });
  const after = await commandStats(state.admin);
  return { ...r, commands: commandsPerCheck(before, after, r.ops) };
}

export async function teardown(state) {
  await state.close();
  state.admin.disconnect();
}

export default async function run(ctx) {
  if (!ctx.redis)
    return { title: 'In-process: Redis', notes: ['No redis-server found: section skipped.'], tables: [] };
  const timing = ctx.quick
    ? { durationMs: 150, rounds: 3, warmupMs: 150 }
    : { durationMs: 1000, rounds: 5, warmupMs: 500 };
  const names = [...ALGORITHMS, RLF, RLR];
  const cases = LEVELS.map((inFlight) => ({ id: inFlight, inFlight }));
  const raw = await interleave(ctx, import.meta.url, {
    subjects: names,
    cases,
    options: { url: ctx.redis.url },
    ...timing,
    label,
  });
  if (ctx.redis.own) await flush(ctx.redis.url);
  const results = {};
  for (const name of names) {
    const r = raw[name];
    results[name] = r.missing
      ? r
      : Object.fromEntries(LEVELS.map((l) => [l, { ...summarize(r[l]), commands: medianCommands(r[l]) }]));
  }

  const rows = names.map((name) => {
    const r = results[name];
    if (r.missing) return [label(name), r.missing, ...LEVELS.map(() => '')];
    const scripts = LEVELS.map((l) => fmtNum(scriptCalls(r[l].commands), 3)).join(' / ');
    const cmds = LEVELS.map((l) => fmtNum(r[l].commands.total, 2)).join(' / ');
    return [label(name), ...LEVELS.map((l) => fmtOps(r[l])), fmtNum(r[1].nsPerOp / 1000, 1), scripts, cmds];
  });

  const head = results['sliding-window'];
  const rlf = results[RLF];
  const rlr = results[RLR];
  const why = head.missing ?? rlf.missing ?? rlr.missing ?? failedChecks(head);
  const ok = !why;
  const hw = raw['sliding-window'];
  const ratio = (level, peer) => roundRatio(hw[level], raw[peer][level]);
  const x = (v) => `${v.toFixed(2)}x`;
  const targets = [
    {
      name: 'Redis, distinct keys, 64 in flight, vs RateLimiterRedis',
      wanted: '>= 2.5x',
      value: ok ? ratio(64, RLF) : undefined,
      threshold: 2.5,
      show: (v) => `${x(v)} (${fmtInt(head[64].opsPerSec)} vs ${fmtInt(rlf[64].opsPerSec)}/s)`,
      why,
    },
    {
      name: 'Redis, distinct keys, 256 in flight, vs RateLimiterRedis',
      wanted: '>= 3x',
      value: ok ? ratio(256, RLF) : undefined,
      threshold: 3,
      show: (v) => `${x(v)} (${fmtInt(head[256].opsPerSec)} vs ${fmtInt(rlf[256].opsPerSec)}/s)`,
      why,
    },
    {
      name: 'Redis, distinct keys, vs rate-limit-redis (64 and 256 in flight, the lower ratio)',
      wanted: '>= 2x',
      value: ok
        ? Math.min(head[64].opsPerSec / rlr[64].opsPerSec, head[256].opsPerSec / rlr[256].opsPerSec)
        : undefined,
      threshold: 2,
      show: x,
      why,
    },
    {
      name: 'Redis, 1 in flight, no slower than the peers',
      wanted: '>= 1.00x of each peer',
      value: ok ? Math.min(ratio(1, RLF), ratio(1, RLR)) : undefined,
      threshold: 1,
      show: x,
      why,
    },
    {
      name: 'Redis, script calls per check',
      wanted: '<= 1',
      value: ok ? Math.max(...LEVELS.map((l) => scriptCalls(head[l].commands))) : undefined,
      threshold: 1,
      atMost: true,
      show: (v) => fmtNum(v, 3),
      why,
    },
  ];

  return {
    title: 'In-process: Redis store, 100k distinct keys',
    tables: [
      {
        columns: [
          'Subject',
          ...LEVELS.map((l) => `${l} in flight checks/s`),
          '1 in flight µs/check',
          `Script calls per check (${LEVELS.join(' / ')})`,
          `Redis commands per check, incl. inside scripts (${LEVELS.join(' / ')})`,
        ],
        rows,
        notes: [
          `Against ${ctx.redis.own ? 'a redis-server started by the bench on a free port' : ctx.redis.url}, ` +
            'one client process per subject, keys cycling through 100,000 distinct keys. ' +
            `${timing.rounds} rounds of ${timing.durationMs} ms per level after a warm-up, subjects interleaved within each round (each timed run after an untimed quarter of its length); medians. ` +
            'Ratios in the targets are medians of per-round ratios. Commands per check = INFO commandstats calls during the timed rounds / checks (commands a script ' +
            'runs count too: INCR inside EVALSHA is 2). "1 in flight µs/check" is the round-trip latency of one check.',
        ],
      },
    ],
    data: results,
    // redis-limit uses the 256-in-flight figure for its ratio to redis-benchmark.
    shared: {
      floodgateRedisBest: head.missing ? undefined : Math.max(...LEVELS.map((l) => head[l].opsPerSec)),
    },
    targets,
  };
}
